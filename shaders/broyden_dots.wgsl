// Broyden: every dot product the rank-one update needs, against the factors before the update.
// With Δx = x' − x = s·update (computed as the step itself: x' − x would cancel in float32 near
// convergence), Δg = g' − g and column c of U (dim × L) and of Vᵀ (stored as rows):
//   column c < ncols:  ( Δx·U_c,  Vᵀ_c·Δg,  Vᵀ_c·g',  0 )
//   column c = ncols:  ( Δx·Δg,   Δx·g',    0,        0 )
// partials[c * groups + g] per workgroup g; broyden_coef.wgsl sums them.
// Bindings: ctrl (read); params {n, groups, stride, cur, memory}; state, factors (read);
//           partials [(ncols + 1) × groups] vec4; update [n] (the step direction of this iteration).
// Dispatch: (groups, ncols + 1) where ncols = valid columns before this update.

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 64u;

struct DotsParams { n: u32, groups: u32, stride: u32, cur: u32, memory: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: DotsParams;
@group(0) @binding(2) var<storage, read> state: array<f32>;
@group(0) @binding(3) var<storage, read> factors: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> update: array<f32>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) grid: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let c = group.y;
  let ncols = grid.y - 1u;
  let cur = params.cur;
  let stride = params.stride;
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let dx = ctrl.h.step_s * update[i];
    let g_new = state[g_new_index(cur, stride, i)];
    let dg = g_new - state[g_index(cur, stride, i)];
    if (c < ncols) {
      let vt = factors[vt_index(params.memory, stride, c, i)];
      sums += vec4<f32>(dx * factors[u_index(stride, c, i)], vt * dg, vt * g_new, 0.0);
    } else {
      sums += vec4<f32>(dx * dg, dx * g_new, 0.0, 0.0);
    }
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[c * params.groups + group.x] = total; }
}
