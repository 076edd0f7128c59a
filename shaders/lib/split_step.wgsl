// The entry points of a fused solver step on a split-k product (picard_split_step.wgsl,
// anderson_split_step.wgsl, broyden_split_step.wgsl): each workgroup runs the step's prologue,
// then its block of lib/gemm_split.wgsl's first pass (its slice group.z of k, the operand from the
// includer's gemm_a), its partial product stored from gemm_partial[params.split_base] on, then
// the step's epilogue. Each entry calls one body, so each binds one view of the weight.
// The includer supplies, besides lib/gemm_split_vec4.wgsl's contract (gemm_a, gemm_b, gemm_b4),
//   fn split_begin(group: vec3u, count: vec3u, lid: u32) -> bool   the prologue; true: done
//   fn split_end(group: vec3u, count: vec3u, lid: u32)             the epilogue (all threads)
//   fn split_base() -> u32                                         where the partials go
// Entries: step_split_main, dispatch (ceil(n / GEMM_COLS), ceil(m / 4), splits);
//          step_split4_main (B as vec4), dispatch (ceil(n / (4·GEMM_COLS)), ceil(m / 4), splits).

//! include lib/gemm_split_vec4.wgsl

@compute @workgroup_size(GEMM_COLS)
fn step_split_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (split_begin(group, count, lid)) { return; }
  gemm_split_block(group, lid, split_base());
  split_end(group, count, lid);
}

@compute @workgroup_size(GEMM_COLS)
fn step_split4_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (split_begin(group, count, lid)) { return; }
  gemm_split4_block(group, lid, split_base());
  split_end(group, count, lid);
}
