// The dense-product library, split over k (for few rows on a GPU: the few-row tile alone leaves
// too few workgroups to fill it, each walking all of k): slice s = group z sums
// k in [s·chunk, min(k, (s+1)·chunk)) into gemm_partial[s, row, col], then gemm_combine_main sums
// the slices in order (deterministic) and runs the epilogue.
// The includer declares, besides lib/gemm_rows.wgsl's contract, `gemm_partial` (read_write,
// [splits, m, n]) and params.chunk, params.splits.
// Entries: `gemm_split_main`, dispatch (ceil(n / GEMM_COLS), ceil(m / 4), splits);
//          `gemm_combine_main`, dispatch (ceil(m · n / 256)).
// lib/gemm_split_vec4.wgsl adds the first pass with B read as vec4 (`gemm_split4_main`).
//! include lib/gemm_rows.wgsl
//! include lib/gemm_split_sum.wgsl

// Workgroup `group`'s 4 × GEMM_COLS block of slice group.z's partial product, stored from
// gemm_partial[base] on (the body of gemm_split_main, for kernels that keep two sets of partials:
// the fused split-k steps, shaders/picard_split_step.wgsl).
fn gemm_split_block(group: vec3u, lid: u32, base: u32) {
  let col = group.x * GEMM_COLS + lid;
  let r0 = group.y * 4u;
  let k_start = group.z * params.chunk;
  let acc = gemm_rows_tile(lid, col, r0, k_start, min(params.k, k_start + params.chunk));
  if (col >= params.n) { return; }
  let size = params.m * params.n;
  for (var t = 0u; t < 4u; t++) {
    if (r0 + t < params.m) { gemm_partial[base + group.z * size + (r0 + t) * params.n + col] = acc[t]; }
  }
}

@compute @workgroup_size(GEMM_COLS)
fn gemm_split_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_split_block(group, lid, 0u);
}

@compute @workgroup_size(256)
fn gemm_combine_main(@builtin(global_invocation_id) id: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_skip()) { return; }
  let i = id.x;
  if (i >= params.m * params.n) { return; }
  gemm_out(i / params.n, i % params.n, gemm_split_sum(0u, params.m * params.n, i));
}
