// Broyden: writes the rank-one update into column `col` and the next direction, elementwise:
//   u = w / (vᵀΔg + 1e-9);  NaN/±Inf in u and v become 0;  U_col <- u,  Vᵀ_col <- v
//   update_i = −(B_new·g')_i = g'_i − Σ_{j ≠ col} U_j[i] d_j − u_i (v·g')
// Every workgroup sums the partials of broyden_rank_one.wgsl itself, in the same fixed order, so
// all of them see the same scalars without another dispatch.
// Bindings: ctrl (read); params {n, groups, stride, cur, memory}; coef; state, vw, partials (read);
//           factors (rw); update [n] (rw).
// Dispatch: (groups).

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 64u;

struct UpdateParams { n: u32, groups: u32, stride: u32, cur: u32, memory: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: UpdateParams;
@group(0) @binding(2) var<storage, read> coef: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> state: array<f32>;
@group(0) @binding(4) var<storage, read> vw: array<f32>;
@group(0) @binding(5) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> factors: array<f32>;
@group(0) @binding(7) var<storage, read_write> update: array<f32>;

fn finite_or_zero(value: f32) -> f32 {
  return select(0.0, value, is_finite(value));
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  var sums = vec4<f32>(0.0);
  for (var g = lid; g < params.groups; g += REDUCE_SIZE) { sums += partials[g]; }
  let scalars = workgroup_sum(sums, lid);
  let denom = scalars.x + 1e-9;
  let v_gnew = scalars.y;
  let header = coef[0];
  let col = bitcast<u32>(header.x);
  let n_new = bitcast<u32>(header.z);
  let stride = params.stride;
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let u = finite_or_zero(vw[stride + i] / denom);
    var next = state[g_new_index(params.cur, stride, i)] - u * v_gnew;
    for (var j = 0u; j < n_new; j++) {
      if (j != col) { next -= factors[u_index(stride, j, i)] * coef[1u + j].z; }
    }
    factors[u_index(stride, col, i)] = u;
    factors[vt_index(params.memory, stride, col, i)] = finite_or_zero(vw[i]);
    update[i] = next;
  }
}
