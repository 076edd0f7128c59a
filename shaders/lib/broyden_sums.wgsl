// The total of `count` consecutive vec4 entries of Broyden's `sums` (lib/broyden_state.wgsl: one
// row of partial sums, one entry per workgroup of the kernel that wrote it), for every thread of
// the workgroup, in one fixed order (so every workgroup of a dispatch that reduces the same row
// gets the same bits). Why not always a tree: a row usually has few entries (one per workgroup of
// a dense step: 1–16 at batch 1), and a tree costs log2(REDUCE_SIZE) + 2 barriers however few
// entries there are — on SwiftShader a barrier costs in proportion to the invocations
// (docs/swiftshader-costs.md), on a GPU it is still a sync per level. Up to SERIAL_SUMS entries
// every thread adds them itself, first to last (the same loads in every thread: one broadcast
// each); more go through lib/reduce.wgsl's workgroup_sum.
// `count` must be uniform (a uniform value, a builtin count or a workgroupUniformLoad result).
// The includer declares sums and REDUCE_SIZE.

//! include lib/reduce.wgsl

const SERIAL_SUMS: u32 = 16u;

fn sums_total(base: u32, count: u32, lid: u32) -> vec4<f32> {
  var total = vec4<f32>(0.0);
  if (count <= SERIAL_SUMS) {
    for (var g = 0u; g < count; g++) { total += sums[base + g]; }
    return total;
  }
  for (var g = lid; g < count; g += REDUCE_SIZE) { total += sums[base + g]; }
  return workgroup_sum(total, lid);
}
