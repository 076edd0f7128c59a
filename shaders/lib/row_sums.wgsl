// The total of one row of partial sums (`count` consecutive vec4 entries from `base`: one per
// workgroup, or one per thread, of the kernel that wrote them), in one fixed order, so every
// workgroup of a dispatch that reduces the same row gets the same bits. Broyden's rows
// (lib/broyden_state.wgsl) and the fused steps' residual partials (lib/step.wgsl) go through it.
// Why not always a tree: a row usually has few entries (one per workgroup of a dense step: 1–16
// at batch 1), and a tree costs log2(REDUCE_SIZE) + 2 barriers however few entries there are — on
// SwiftShader ≈ 4 µs each at 64 threads (bench/kernel-costs.ts, docs/swiftshader-costs.md), on a
// GPU still a sync per level. Up to SERIAL_SUMS entries one thread adds them, first to
// last, and hands the total on (thread 0: sums_total_first; a reader whose every thread needs it
// shares it through a barrier it has anyway, lib/broyden_advance.wgsl); more go through
// lib/reduce.wgsl's workgroup_sum. On a CPU adapter the writers skip their trees altogether and
// leave one entry per thread (`serial`, src/solvers/run.ts threadSums): there a tree's barriers
// cost far more than a serial sum over a few hundred entries, which the reader then adds in order
// whatever their number.
// `count` and `serial` must be uniform (a uniform value, a builtin count or a workgroupUniformLoad
// result). The includer declares REDUCE_SIZE and supplies the row's storage:
//   fn row_entry(index: u32) -> vec4<f32>

//! include lib/reduce.wgsl

const SERIAL_SUMS: u32 = 16u;

// Whether one thread adds the row (sums_serial) rather than the workgroup's tree (sums_tree).
fn sums_by_one(count: u32, serial: bool) -> bool { return serial || count <= SERIAL_SUMS; }

// The total for thread 0 (the other threads' value is unspecified).
fn sums_total_first(base: u32, count: u32, serial: bool, lid: u32) -> vec4<f32> {
  if (!sums_by_one(count, serial)) { return sums_tree(base, count, lid); }
  var total = vec4<f32>(0.0);
  if (lid == 0u) { total = sums_serial(base, count); }
  return total;
}

// One thread's sum of the row, first to last.
fn sums_serial(base: u32, count: u32) -> vec4<f32> {
  var total = vec4<f32>(0.0);
  for (var g = 0u; g < count; g++) { total += row_entry(base + g); }
  return total;
}

// The workgroup's tree over the row (every thread; uniform control flow), for every thread.
fn sums_tree(base: u32, count: u32, lid: u32) -> vec4<f32> {
  var total = vec4<f32>(0.0);
  for (var g = lid; g < count; g += REDUCE_SIZE) { total += row_entry(base + g); }
  return workgroup_sum(total, lid);
}
