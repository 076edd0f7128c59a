// The dense-product library, split over k with B read 4 columns at a time: lib/gemm_split.wgsl's
// first pass on lib/gemm_rows_vec4.wgsl's tile (the same contract: `gemm_partial`, params.chunk,
// params.splits, and `gemm_b4`); gemm_combine_main (lib/gemm_split.wgsl) then sums the slices.
// Entry `gemm_split4_main`, dispatch (ceil(n / (4·GEMM_COLS)), ceil(m / 4), splits).
//! include lib/gemm_split.wgsl
//! include lib/gemm_rows_vec4.wgsl

// lib/gemm_split.wgsl's gemm_split_block with B read as vec4 (4 adjacent columns per thread).
fn gemm_split4_block(group: vec3u, lid: u32, base: u32) {
  let col = 4u * (group.x * GEMM_COLS + lid);
  let r0 = group.y * 4u;
  let k_start = group.z * params.chunk;
  let acc = gemm_rows4_tile(lid, col, r0, k_start, min(params.k, k_start + params.chunk));
  if (col + 3u >= params.n) { return; }
  let at = base + group.z * params.m * params.n + col;
  for (var t = 0u; t < 4u; t++) {
    if (r0 + t < params.m) {
      let i = at + (r0 + t) * params.n;
      gemm_partial[i] = acc[t].x;
      gemm_partial[i + 1u] = acc[t].y;
      gemm_partial[i + 2u] = acc[t].z;
      gemm_partial[i + 3u] = acc[t].w;
    }
  }
}

@compute @workgroup_size(GEMM_COLS)
fn gemm_split4_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_split4_block(group, lid, 0u);
}
