// Broyden, after the evaluation fx = f(x'): the new residual g' = fx − x' and every partial sum
// the iteration's bookkeeping needs, in one dispatch. With Δx = ls_s·update (the step itself:
// x' − x would cancel in float32 near convergence), Δg = g' − g and the factors before the
// update (column c of U, row c of Vᵀ), workgroup g of row c stores sums[row_index(rows, c, g)]:
//   row c < ncols:  ( Δx·U_c,  Vᵀ_c·Δg,  Vᵀ_c·g',  0 )
//   row ncols:      ( Σ g'²,   Σ (g' + x')²,  0,  0 )   → diffs(x', g') in the decide kernel
// Row ncols stores g' (params.from_state = 0); with the line search g' and x' are in `state`
// already (broyden_finalize.wgsl) and only read.
// The body of broyden_measure.wgsl (fx read from aux) and broyden_split_measure.wgsl (fx combined
// from a split-k product's partials): the includer supplies fn broyden_fx(i: u32) -> f32.
// Declares bindings 0–5: ctrl (read); params {n, groups, rows, stride, cur, memory, from_state,
// and the split variant's splits, features}; state (rw); factors (read); aux (read: update, fx); sums (rw).
// Dispatch: (groups, ncols + 1), ncols = the valid columns before this update (min(t, L)).
// Element i belongs to workgroup (i / REDUCE_SIZE) mod groups: bit-identical sums run to run.

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

struct MeasureParams { n: u32, groups: u32, rows: u32, stride: u32, cur: u32, memory: u32, from_state: u32, splits: u32, features: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: MeasureParams;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> factors: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> sums: array<vec4<f32>>;

fn broyden_measure(group: vec3u, grid: vec3u, lid: u32) {
  if (solve_done(lid)) { return; }
  let c = group.y;
  let ncols = grid.y - 1u;
  let cur = params.cur;
  let stride = params.stride;
  let s = ctrl.h.ls_s;
  var total = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let x_new = state[x_new_index(cur, stride, i)];
    var g_new = broyden_fx(i) - x_new;
    if (params.from_state != 0u) {
      g_new = state[g_new_index(cur, stride, i)];
    }
    if (c < ncols) {
      let dx = s * aux[update_index(i)];
      let dg = g_new - state[g_index(cur, stride, i)];
      let vt = factors[vt_index(params.memory, stride, c, i)];
      total += vec4<f32>(dx * factors[u_index(stride, c, i)], vt * dg, vt * g_new, 0.0);
    } else {
      if (params.from_state == 0u) { state[g_new_index(cur, stride, i)] = g_new; }
      let z = g_new + x_new;
      total += vec4<f32>(g_new * g_new, z * z, 0.0, 0.0);
    }
  }
  let sum = workgroup_sum(total, lid);
  if (lid == 0u) { sums[row_index(params.rows, c, group.x)] = sum; }
}
