// One Anderson step before the iteration's evaluation, in every workgroup: the prologue of
// lib/anderson_step.wgsl (ends the iteration before, G's new row and column, α), then each
// workgroup mixes its own elements of u' = (1 − β)·Σ α_j x_j + β·Σ α_j fx_j into ring slot q (on
// a restart slot 0 first takes slot p's entry). The evaluation of u' and its measurement follow
// (the layer's kernels and anderson_measure.wgsl, or anderson_dense_step.wgsl).
// Bindings: lib/step.wgsl's 0–3, 6, 7; lib/anderson_step.wgsl's 8–11.
// Dispatch: (groups) of REDUCE_SIZE threads; element i belongs to workgroup (i / REDUCE_SIZE) mod groups.

//! include lib/reduce.wgsl
//! include lib/anderson_step.wgsl

const REDUCE_SIZE: u32 = 64u;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (anderson_step_begin(group.x, count.x, lid)) { return; }
  for (var i = group.x * REDUCE_SIZE + lid; i < params.state_size; i += count.x * REDUCE_SIZE) {
    anderson_mix_element(i, anderson_entry);
  }
}
