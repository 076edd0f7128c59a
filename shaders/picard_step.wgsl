// One Picard step after the layer's evaluation next = f(u), for any layer: ends the iteration
// before (lib/step.wgsl: measure, keep the best, decide) and measures this one (residual partial
// sums of (u, next)), so an iteration is the layer's kernels plus this one dispatch. Iterates
// live in a ring of three slots chosen by the iteration count (src/solvers/picard.ts): u, next,
// and the iterate before u, which the commit of the iteration before still reads.
// Bindings: ctrl (read_write); ctrl_b (read_write); params; step_partials [2, groups] vec4;
//           step_candidate = u, step_previous = the iterate before u, next [n]; best_u, best_prev [n].
// Dispatch: (groups) of REDUCE_SIZE threads; element i belongs to workgroup (i / REDUCE_SIZE) mod
// groups (a fixed assignment: bit-identical sums run to run).

//! include lib/step.wgsl

const REDUCE_SIZE: u32 = 64u;

struct StepParams {
  eps: f32,
  stop_rel: u32,
  return_final: u32,
  max_depth: u32,
  trace_cap: u32,
  memory: u32,
  line_search: u32,
  stall_steps: u32,
  mode: u32,
  header_in_b: u32,
  partial_groups: u32,
  partial_in: u32,
  partial_out: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read_write> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: StepParams;
@group(0) @binding(3) var<storage, read_write> step_partials: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> step_candidate: array<f32>;
@group(0) @binding(5) var<storage, read> step_previous: array<f32>;
@group(0) @binding(6) var<storage, read> next: array<f32>;
@group(0) @binding(7) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(8) var<storage, read_write> best_prev: array<f32>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (step_begin(group.x, count.x, lid)) { return; }
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += count.x * REDUCE_SIZE) {
    sums += step_residual(step_candidate[i], next[i]);
  }
  step_end(group.x, lid, sums);
}
