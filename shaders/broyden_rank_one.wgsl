// Broyden: the two vectors of the rank-one update, against the factors before it:
//   v_i = (Δxᵀ B)_i = −Δx_i + Σ_j a_j Vᵀ_j[i]
//   w_i = Δx_i − (B·Δg)_i = Δx_i + Δg_i − Σ_j U_j[i] c_j
// stored in vw, with per-workgroup partial sums (v·Δg, v·g', 0, 0) that give the denominator
// vᵀΔg and the new column's Vᵀg' — from the explicit v, as the original computes them (the
// algebraic shortcut through Σ a_j c_j cancels badly in float32 when |U| is large).
// Bindings: ctrl (read); params {n, groups, stride, cur, memory}; coef (broyden_coef.wgsl);
//           state, factors (read); vw (rw); partials [groups] vec4; update [n] (Δx = ctrl.h.step_s · update).
// Dispatch: (groups).

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 64u;

struct RankOneParams { n: u32, groups: u32, stride: u32, cur: u32, memory: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: RankOneParams;
@group(0) @binding(2) var<storage, read> coef: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> state: array<f32>;
@group(0) @binding(4) var<storage, read> factors: array<f32>;
@group(0) @binding(5) var<storage, read_write> vw: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> update: array<f32>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let n_old = bitcast<u32>(coef[0].y);
  let cur = params.cur;
  let stride = params.stride;
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let dx = ctrl.h.step_s * update[i];
    let g_new = state[g_new_index(cur, stride, i)];
    let dg = g_new - state[g_index(cur, stride, i)];
    var v = -dx;
    var w = dx + dg;
    for (var j = 0u; j < n_old; j++) {
      let cj = coef[1u + j];
      v += cj.x * factors[vt_index(params.memory, stride, j, i)];
      w -= factors[u_index(stride, j, i)] * cj.y;
    }
    vw[i] = v;
    vw[stride + i] = w;
    sums += vec4<f32>(v * dg, v * g_new, 0.0, 0.0);
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.x] = total; }
}
