// Deterministic workgroup reduction (fixed tree order, no atomics) over REDUCE_SIZE threads. Each
// kernel that includes this piece declares its own `const REDUCE_SIZE: u32` (a power of two,
// anywhere at module scope): 256 for the fused Picard kernel, the line search and the loss kernels, 64 for the
// solvers' per-iteration reductions and the layer stages. Why 64 there: on a CPU implementation of WebGPU (SwiftShader) a barrier costs in
// proportion to the invocations of the workgroup (≈ 0.2 ms per reduction at 256 threads, ≈ 0.05 ms
// at 64, docs/swiftshader-costs.md); on a GPU the solvers keep the same threads in flight with 4×
// the workgroups (src/solvers/run.ts MAX_REDUCE_GROUPS).
//
// The tree pairs neighbours first: level s adds slot i + s into slot i for i a multiple of 2s
// (s = 1, 2, 4, …). lib/reduce_subgroups.wgsl, the variant composed for devices with the
// `subgroups` feature (src/gpu/shader-files.ts SUBGROUP_PIECES), adds in this same order, so both
// give the same bits wherever subgroups are runs of consecutive local_invocation_index.

var<workgroup> reduce_scratch: array<vec4<f32>, REDUCE_SIZE>;

// Sum of `value` over the REDUCE_SIZE threads of the workgroup; every thread gets the result.
fn workgroup_sum(value: vec4<f32>, local_index: u32) -> vec4<f32> {
  reduce_scratch[local_index] = value;
  workgroupBarrier();
  for (var stride = 1u; stride < REDUCE_SIZE; stride <<= 1u) {
    // Threads 0.. of the level do its pairs, so whole warps idle rather than every other lane.
    let slot = 2u * stride * local_index;
    if (slot < REDUCE_SIZE) {
      reduce_scratch[slot] += reduce_scratch[slot + stride];
    }
    workgroupBarrier();
  }
  let total = reduce_scratch[0];
  workgroupBarrier();
  return total;
}
