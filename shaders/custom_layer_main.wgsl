// Entry point of a defineLayer kernel: one thread per value of what it computes (the output
// [rows, features] for forward/grad_input/grad_qd, a parameter for grad_<name>); ANCHORAX_VALUE(e)
// is replaced by the call of the user's function for element e. With anchorax_sizes.accumulate
// the value is added to the output (∂Qd summed over the stages of a sequential layer).
// It includes nothing: defineLayer (src/layers/define.ts) composes it at run time after
// lib/custom_layer.wgsl with its includes (gate, grid…), the parameter declarations and the user's
// WGSL, so the pieces are there once.
// Dispatch: grid_groups(count), 256 threads, grid-stride.

@compute @workgroup_size(256)
fn anchorax_main(@builtin(global_invocation_id) id: vec3u,
                 @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let accumulate = anchorax_sizes.accumulate != 0u;
  for (var e = id.x; e < anchorax_sizes.count; e += grid_stride(groups)) {
    var value = ANCHORAX_VALUE(e);
    if (accumulate) { value += anchorax_out[e]; }
    anchorax_out[e] = value;
  }
}
