// Deterministic workgroup reduction (fixed tree order, no atomics) for 256-thread workgroups.

const REDUCE_SIZE: u32 = 256u;

var<workgroup> reduce_scratch: array<vec4<f32>, 256>;

// Sum of `value` over the 256 threads of the workgroup; every thread gets the result.
fn workgroup_sum(value: vec4<f32>, local_index: u32) -> vec4<f32> {
  reduce_scratch[local_index] = value;
  workgroupBarrier();
  for (var stride = REDUCE_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (local_index < stride) {
      reduce_scratch[local_index] += reduce_scratch[local_index + stride];
    }
    workgroupBarrier();
  }
  let total = reduce_scratch[0];
  workgroupBarrier();
  return total;
}
