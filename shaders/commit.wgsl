// Best-so-far copy, after finish.wgsl: when ctrl.h.improved is 1, best_u <- candidate and
// best_prev <- previous; when 2, both <- previous (the starting point).
// Bindings: ctrl (read); params {n, groups}; candidate, previous [n]; best_u, best_prev [n].
// Dispatch: (groups), 256 threads, grid-stride.

//! include lib/control.wgsl

struct CommitParams { n: u32, groups: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: CommitParams;
@group(0) @binding(2) var<storage, read> candidate: array<f32>;
@group(0) @binding(3) var<storage, read> previous: array<f32>;
@group(0) @binding(4) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(5) var<storage, read_write> best_prev: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let mode = ctrl.h.improved;
  if (mode == 0u) { return; }
  for (var i = id.x; i < params.n; i += params.groups * 256u) {
    let prev = previous[i];
    best_u[i] = select(candidate[i], prev, mode == 2u);
    best_prev[i] = prev;
  }
}
