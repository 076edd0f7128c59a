// Broyden, after broyden_decide.wgsl: finishes the rank-one update and takes the next step,
// elementwise on each workgroup's own elements. Every workgroup sums the decide kernel's rank-one
// partials in the same fixed order (denominator vᵀΔg + 1e-9 and v·g'), then
//   u = w / (vᵀΔg + 1e-9);  NaN/±Inf in u and v become 0;  U_col <- u,  Vᵀ_col <- v
//   update_i = −(B_new·g')_i = g'_i − u_i (v·g') − Σ_{j ≠ col} U_j[i] d_j
//   x''_i = x'_i + ls_eval_s · update_i   (the next trial point; the line search starts there too)
// with col = step mod L for the step just counted. Workgroup 0 copies the new header (ctrl_b) back
// into ctrl.h, where the next evaluation's gate, the line search and the readback look.
// Bindings: ctrl (rw); ctrl_b (read); params {n, groups, stride, cur, memory}; sums (read);
//           state, factors, aux (rw).
// Dispatch: (groups), groups = the decide kernel's.

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 64u;

struct AdvanceParams { n: u32, groups: u32, stride: u32, cur: u32, memory: u32 }

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: AdvanceParams;
@group(0) @binding(3) var<storage, read> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;

var<workgroup> done_value: u32;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) {
    let h = ctrl_b;
    if (group.x == 0u) { ctrl.h = h; }
    done_value = h.done;
  }
  if (workgroupUniformLoad(&done_value) != 0u) { return; }
  let groups = params.groups;
  let memory = params.memory;
  let stride = params.stride;
  let cur = params.cur;
  var partial = vec4<f32>(0.0);
  for (var g = lid; g < groups; g += REDUCE_SIZE) { partial += sums[rank_offset(memory, groups) + g]; }
  let scalars = workgroup_sum(partial, lid);
  let denom = scalars.x + 1e-9;
  let v_gnew = scalars.y;
  let step = ctrl_b.nstep - 1u; // the decide kernel has counted this iteration
  let col = step % memory;
  let n_new = min(step + 1u, memory);
  let s = ctrl_b.ls_eval_s;
  let coefs = coef_offset(memory, groups);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += groups * REDUCE_SIZE) {
    let u = finite_or_zero(aux[w_index(stride, i)] / denom);
    var next = state[g_new_index(cur, stride, i)] - u * v_gnew;
    for (var j = 0u; j < n_new; j++) {
      if (j != col) { next -= factors[u_index(stride, j, i)] * sums[coefs + j].z; }
    }
    factors[u_index(stride, col, i)] = u;
    factors[vt_index(memory, stride, col, i)] = finite_or_zero(aux[v_index(stride, i)]);
    aux[update_index(i)] = next;
    state[x_index(cur, stride, i)] = state[x_new_index(cur, stride, i)] + s * next;
  }
}
