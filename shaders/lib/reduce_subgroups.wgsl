// lib/reduce.wgsl for devices with the `subgroups` feature: the same `workgroup_sum` (same
// signature, same REDUCE_SIZE contract, same order of additions), with the levels inside a
// subgroup done by register shuffles instead of workgroup memory and barriers. The build composes
// it, after `enable subgroups;`, in place of lib/reduce.wgsl in a second variant of every kernel
// that includes that (src/gpu/shader-files.ts SUBGROUP_PIECES); the engine compiles that variant
// when its device has the feature (docs/architecture.md, "Subgroups").
//
// Deterministic, and the same bits in every lane: each level is v += subgroupShuffleXor(v, mask),
// so lanes l and l ^ mask add the same two values (in either order: float addition commutes) and
// agree; after the masks 1, 2, … span/2 every lane of an aligned run of `span` lanes holds the
// tree's value of that run (lib/reduce.wgsl's levels 1 … span/2). The subgroup size is read on the
// device (the count of lanes of the subgroup, uniform through workgroup memory), never assumed:
// 4 on SwiftShader, 32 on NVIDIA, 64 on AMD. Each round of shuffles covers `span` times more
// slots; between rounds the run totals go through workgroup memory (one barrier pair), the first
// lane of run j handing its total to lane j of the next round. So the scratch holds at most
// REDUCE_SIZE / MIN_SUBGROUP_LANES totals: a quarter of lib/reduce.wgsl's, which matters on
// SwiftShader, where every declared workgroup value costs each dispatch (docs/swiftshader-costs.md).
// WebGPU's subgroups have at least 4 lanes; the engine takes this variant only where the adapter
// says so (src/engine.ts subgroups).

const MIN_SUBGROUP_LANES: u32 = 4u;

var<workgroup> reduce_scratch: array<vec4<f32>, (REDUCE_SIZE + MIN_SUBGROUP_LANES - 1u) / MIN_SUBGROUP_LANES>;
var<workgroup> reduce_lanes: u32;

// Sum of `value` over the REDUCE_SIZE threads of the workgroup; every thread gets the result.
fn workgroup_sum(value: vec4<f32>, local_index: u32) -> vec4<f32> {
  // Every lane is active here (the workgroup's threads all reach the reduction), so this is the
  // subgroup size; workgroupUniformLoad makes it uniform for the loops below.
  let size = subgroupAdd(1u);
  if (local_index == 0u) { reduce_lanes = size; }
  let lanes = workgroupUniformLoad(&reduce_lanes);
  var v = value;
  // Lane t < count holds the tree's value of slot t · (REDUCE_SIZE / count).
  var count = REDUCE_SIZE;
  loop {
    let span = min(lanes, count);
    for (var mask = 1u; mask < span; mask <<= 1u) { v += subgroupShuffleXor(v, mask); }
    if (span >= count) { break; }
    // The first lane of each run passes its total on to lane (its index / span) of the next round.
    if (local_index % span == 0u && local_index < count) { reduce_scratch[local_index / span] = v; }
    workgroupBarrier();
    count /= span;
    // Lanes past the last total read one anyway: their values reach no lane that is kept.
    v = reduce_scratch[min(local_index, count - 1u)];
    workgroupBarrier();
  }
  if (lanes >= REDUCE_SIZE) { return v; }
  // Lane 0 holds the total (and the lanes of its run); hand it to every thread.
  if (local_index == 0u) { reduce_scratch[0] = v; }
  workgroupBarrier();
  let total = reduce_scratch[0];
  workgroupBarrier();
  return total;
}
