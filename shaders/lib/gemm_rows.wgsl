// The dense-product library, few rows (GEMV-like): C = A·B for C [m, n], computed GEMM_ROWS = 4
// rows × GEMM_COLS columns per workgroup of GEMM_COLS threads. The 4 rows of A are staged in
// workgroup memory GEMM_COLS values of k at a time; each thread streams its column of B
// (coalesced across the workgroup when B is [k, n] row-major) and reuses each value for 4 rows.
// The includer supplies the operands and the epilogue (see lib/gemm_tiled.wgsl for the contract):
//   fn gemm_a(row: u32, kk: u32) -> f32;  fn gemm_b(kk: u32, col: u32) -> f32  (called in bounds)
//   fn gemm_out(row: u32, col: u32, acc: f32)   the epilogue: whatever runs before the store
// and `params` with m, n, k (u32).
// Entry `gemm_rows_main` (body gemm_rows_block). Dispatch: (ceil(n / GEMM_COLS), ceil(m / 4)).
// lib/gemm_split.wgsl reuses the tile over a slice of k.
//! include lib/gate.wgsl

override GEMM_COLS: u32 = 64u;

var<workgroup> gemm_a_rows: array<f32, 4 * GEMM_COLS>;

// Σ_{k_start ≤ kk < k_end} A[r0 + t, kk] · B[kk, col] for t = 0..3 (rows past m count 0).
fn gemm_rows_tile(lid: u32, col: u32, r0: u32, k_start: u32, k_end: u32) -> vec4<f32> {
  var acc = vec4<f32>(0.0);
  for (var k0 = k_start; k0 < k_end; k0 += GEMM_COLS) {
    for (var t = 0u; t < 4u; t++) {
      let kk = k0 + lid;
      var value = 0.0;
      if (r0 + t < params.m && kk < k_end) { value = gemm_a(r0 + t, kk); }
      gemm_a_rows[t * GEMM_COLS + lid] = value;
    }
    workgroupBarrier();
    if (col < params.n) {
      let steps = min(GEMM_COLS, k_end - k0);
      for (var kk = 0u; kk < steps; kk++) {
        let b = gemm_b(k0 + kk, col);
        acc += vec4<f32>(gemm_a_rows[kk], gemm_a_rows[GEMM_COLS + kk], gemm_a_rows[2u * GEMM_COLS + kk],
                         gemm_a_rows[3u * GEMM_COLS + kk]) * b;
      }
    }
    workgroupBarrier();
  }
  return acc;
}

// Workgroup `group`'s 4 × GEMM_COLS block of C, each value handed to gemm_out (the body of
// gemm_rows_main, for kernels that wrap the product in their own prologue and epilogue).
fn gemm_rows_block(group: vec3u, lid: u32) {
  let col = group.x * GEMM_COLS + lid;
  let r0 = group.y * 4u;
  let acc = gemm_rows_tile(lid, col, r0, 0u, params.k);
  if (col >= params.n) { return; }
  for (var t = 0u; t < 4u; t++) {
    if (r0 + t < params.m) { gemm_out(r0 + t, col, acc[t]); }
  }
}

@compute @workgroup_size(GEMM_COLS)
fn gemm_rows_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_rows_block(group, lid);
}
