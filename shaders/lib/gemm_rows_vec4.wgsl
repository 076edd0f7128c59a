// The dense-product library, few rows, B read 4 columns at a time (vec4 loads) where B is [k, n]
// row-major with n a multiple of 4: a workgroup of GEMM_COLS threads computes 4 rows ×
// 4·GEMM_COLS columns, each thread 4 rows × 4 adjacent columns. A is staged as in
// lib/gemm_rows.wgsl; the loop over k issues 8 vec4 loads of B (128 bytes per thread in flight)
// before the updates that use them, and each output sums k in increasing order, as
// lib/gemm_rows.wgsl does (the same bits).
// Besides lib/gemm_rows.wgsl's contract, the includer supplies
//   fn gemm_b4(kk: u32, col: u32) -> vec4<f32>   B[kk, col .. col + 3], col a multiple of 4,
//                                                called only with col + 3 < n
// (an array<vec4<f32>> binding of B's buffer: the includer uses this piece only when n % 4 = 0).
// Entry `gemm_rows4_main` (body gemm_rows4_block). Dispatch: (ceil(n / (4·GEMM_COLS)), ceil(m / 4)).
// lib/gemm_split_vec4.wgsl reuses the tile over a slice of k.
//! include lib/gemm_rows.wgsl

// acc[t] += a[t] · b: row t of the block takes A[row t, kk] times the 4 columns of B[kk, ·].
fn gemm_rows4_add(acc: ptr<function, array<vec4<f32>, 4>>, a: vec4<f32>, b: vec4<f32>) {
  (*acc)[0] += a.x * b;
  (*acc)[1] += a.y * b;
  (*acc)[2] += a.z * b;
  (*acc)[3] += a.w * b;
}

// Σ_{k_start ≤ kk < k_end} A[r0 + t, kk] · B[kk, col .. col + 3] for t = 0..3 (rows past m count 0).
fn gemm_rows4_tile(lid: u32, col: u32, r0: u32, k_start: u32, k_end: u32) -> array<vec4<f32>, 4> {
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = k_start; k0 < k_end; k0 += GEMM_COLS) {
    gemm_stage_a(lid, r0, k0, k_end);
    workgroupBarrier();
    if (col + 3u < params.n) {
      let steps = min(GEMM_COLS, k_end - k0);
      var s = 0u;
      for (; s + 8u <= steps; s += 8u) {
        let kk = k0 + s;
        let b0 = gemm_b4(kk, col);
        let b1 = gemm_b4(kk + 1u, col);
        let b2 = gemm_b4(kk + 2u, col);
        let b3 = gemm_b4(kk + 3u, col);
        let b4 = gemm_b4(kk + 4u, col);
        let b5 = gemm_b4(kk + 5u, col);
        let b6 = gemm_b4(kk + 6u, col);
        let b7 = gemm_b4(kk + 7u, col);
        gemm_rows4_add(&acc, gemm_a_rows[s], b0);
        gemm_rows4_add(&acc, gemm_a_rows[s + 1u], b1);
        gemm_rows4_add(&acc, gemm_a_rows[s + 2u], b2);
        gemm_rows4_add(&acc, gemm_a_rows[s + 3u], b3);
        gemm_rows4_add(&acc, gemm_a_rows[s + 4u], b4);
        gemm_rows4_add(&acc, gemm_a_rows[s + 5u], b5);
        gemm_rows4_add(&acc, gemm_a_rows[s + 6u], b6);
        gemm_rows4_add(&acc, gemm_a_rows[s + 7u], b7);
      }
      for (; s < steps; s++) { gemm_rows4_add(&acc, gemm_a_rows[s], gemm_b4(k0 + s, col)); }
    }
    workgroupBarrier();
  }
  return acc;
}

// Writes the 4 × 4 block at (r0, col) through `gemm_out` (rows past m skipped).
fn gemm_rows4_store(r0: u32, col: u32, acc: array<vec4<f32>, 4>) {
  if (col + 3u >= params.n) { return; }
  for (var t = 0u; t < 4u; t++) {
    if (r0 + t >= params.m) { continue; }
    for (var s = 0u; s < 4u; s++) { gemm_out(r0 + t, col + s, acc[t][s]); }
  }
}

// Workgroup `group`'s 4 × 4·GEMM_COLS block of C, each value handed to gemm_out (the body of
// gemm_rows4_main, for kernels that wrap the product in their own prologue and epilogue).
fn gemm_rows4_block(group: vec3u, lid: u32) {
  let col = 4u * (group.x * GEMM_COLS + lid);
  let r0 = group.y * 4u;
  gemm_rows4_store(r0, col, gemm_rows4_tile(lid, col, r0, 0u, params.k));
}

@compute @workgroup_size(GEMM_COLS)
fn gemm_rows4_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_rows4_block(group, lid);
}
