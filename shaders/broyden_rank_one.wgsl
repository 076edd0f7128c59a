// Broyden: the two vectors of the rank-one update, against the factors before it:
//   v_i = (Δxᵀ B)_i = −Δx_i + Σ_j a_j Vᵀ_j[i]
//   w_i = Δx_i − (B·Δg)_i = Δx_i + Δg_i − Σ_j U_j[i] c_j
// stored in v_new / w_new, with per-workgroup partial sums (v·Δg, v·g', 0, 0) that give the
// denominator vᵀΔg and the new column's Vᵀg' (computed from the explicit v, as the original
// does: the algebraic shortcut through a_j·c_j cancels badly when |U| is large).
// Bindings: ctrl (read); params {n, groups, stride}; coef (broyden_coef.wgsl); x, x_new, gx, gx_new [n];
//           u_cols, vt_rows [L × stride]; v_new, w_new [n]; partials [groups] vec4.
// Dispatch: (groups).

struct RankOneParams { n: u32, groups: u32, stride: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: RankOneParams;
@group(0) @binding(2) var<storage, read> coef: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> x_new: array<f32>;
@group(0) @binding(5) var<storage, read> gx: array<f32>;
@group(0) @binding(6) var<storage, read> gx_new: array<f32>;
@group(0) @binding(7) var<storage, read> u_cols: array<f32>;
@group(0) @binding(8) var<storage, read> vt_rows: array<f32>;
@group(0) @binding(9) var<storage, read_write> v_new: array<f32>;
@group(0) @binding(10) var<storage, read_write> w_new: array<f32>;
@group(0) @binding(11) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let n_old = bitcast<u32>(coef[0].y);
  let s = params.stride;
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let dx = x_new[i] - x[i];
    let g_new = gx_new[i];
    let dg = g_new - gx[i];
    var v = -dx;
    var w = dx + dg;
    for (var j = 0u; j < n_old; j++) {
      let cj = coef[1u + j];
      v += cj.x * vt_rows[j * s + i];
      w -= u_cols[j * s + i] * cj.y;
    }
    v_new[i] = v;
    w_new[i] = w;
    sums += vec4<f32>(v * dg, v * g_new, 0.0, 0.0);
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.x] = total; }
}
