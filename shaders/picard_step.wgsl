// One Picard step after the layer's evaluation next = f(u), for any layer: ends the iteration
// before (lib/step.wgsl: measure, keep the best, decide) and measures this one (residual partial
// sums of (u, next)), so an iteration is the layer's kernels plus this one dispatch. Iterates
// live in a ring of three slots chosen by the iteration count (src/solvers/picard.ts): u, next,
// and the iterate before u, which the commit of the iteration before still reads.
// Bindings: lib/step.wgsl's 0–7 (lib/step_operands.wgsl: step_candidate = u, step_previous = the iterate before u); next [n].
// Dispatch: (groups) of REDUCE_SIZE threads; element i belongs to workgroup (i / REDUCE_SIZE) mod
// groups (a fixed assignment: bit-identical sums run to run).

//! include lib/reduce.wgsl
//! include lib/step.wgsl
//! include lib/step_operands.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> next: array<f32>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (step_begin(group.x, count.x, lid)) { return; }
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.state_size; i += count.x * REDUCE_SIZE) {
    sums += residual_sums(step_candidate[i], next[i]);
  }
  step_end(group.x, lid, sums);
}
