// Broyden: the trial point of an evaluation, x_new = x + s·update with s = ctrl.h.ls_eval_s
// (1 without line search). Gated like a layer evaluation (ctrl.h.skip_eval).
// Bindings: ctrl (read); params {n, groups, stride, cur}; update [n]; state (rw; writes x_new).
// Dispatch: (groups), 256 threads, grid-stride.

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl

struct StepParams { n: u32, groups: u32, stride: u32, cur: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: StepParams;
@group(0) @binding(2) var<storage, read> update: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (ctrl.h.skip_eval != 0u) { return; }
  let s = ctrl.h.ls_eval_s;
  for (var i = id.x; i < params.n; i += params.groups * 256u) {
    state[x_new_index(params.cur, params.stride, i)] = state[x_index(params.cur, params.stride, i)] + s * update[i];
  }
}
