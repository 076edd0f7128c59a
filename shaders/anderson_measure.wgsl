// Anderson: the measurements of an iteration after the layer's evaluation fx_p = f(x_p), for any
// layer (lib/anderson_measure.wgsl): residual sums and the new Gram row, as partials for the next
// step (anderson_step.wgsl). A dense layer evaluates and measures in one kernel instead
// (anderson_dense_step.wgsl).
// Bindings: lib/anderson_measure.wgsl's 0–6.
// Dispatch: (groups) of REDUCE_SIZE threads; element i belongs to workgroup (i / REDUCE_SIZE) mod groups.

//! include lib/reduce.wgsl
//! include lib/anderson_measure.wgsl

const REDUCE_SIZE: u32 = 64u;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  let base = measure_base();
  for (var i = group.x * REDUCE_SIZE + lid; i < params.state_size; i += count.x * REDUCE_SIZE) {
    measure_element(i, x_ring[base + i], fx_ring[base + i]);
  }
  measure_store(group.x, count.x, lid);
}
