// Broyden: the accepted point and its residual, with residual partial sums.
//   g' = fx − x_eval           (the residual of the last evaluation; x_eval sits in the x_new slot)
//   x' = x + ls_s·update       when params.apply_step = 1 (line search: may differ from x_eval
//                              once the step was clamped — the original's quirk), else x' = x_eval
//   partials[g] = ( Σ g'², Σ (g' + x')², 0, 0 )  → diffs(x', g') in finish.wgsl
// x' overwrites the x_new slot; g' goes to the g_new slot.
// Bindings: ctrl (read); params {n, groups, stride, cur, apply_step}; update, fx [n]; state (rw);
//           partials [groups] vec4.
// Dispatch: (groups). For the initial point: cur = 1, apply_step = 0 (x0 in slot 0, g0 into slot 2).

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 64u;

struct FinalizeParams { n: u32, groups: u32, stride: u32, cur: u32, apply_step: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: FinalizeParams;
@group(0) @binding(2) var<storage, read> update: array<f32>;
@group(0) @binding(3) var<storage, read> fx: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let s = ctrl.h.ls_s;
  let cur = params.cur;
  let stride = params.stride;
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let evaluated_at = state[x_new_index(cur, stride, i)];
    let g = fx[i] - evaluated_at;
    var accepted = evaluated_at;
    if (params.apply_step != 0u) { accepted = state[x_index(cur, stride, i)] + s * update[i]; }
    state[x_new_index(cur, stride, i)] = accepted;
    state[g_new_index(cur, stride, i)] = g;
    let z = g + accepted;
    sums += vec4<f32>(g * g, z * z, 0.0, 0.0);
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.x] = total; }
}
