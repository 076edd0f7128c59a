// The dense-product library, few rows (GEMV-like): C = A·B for C [m, n], computed GEMM_ROWS = 4
// rows × GEMM_COLS columns per workgroup of GEMM_COLS threads. The 4 rows of A are staged in
// workgroup memory GEMM_COLS values of k at a time, as one vec4 per k (the 4 rows side by side);
// each thread streams its column of B (coalesced across the workgroup when B is [k, n] row-major)
// and reuses each value for 4 rows. The loop over k issues 8 loads of B before the 8 updates that
// use them (8 independent loads in flight per thread); each output still sums k in increasing
// order: deterministic. lib/gemm_rows_vec4.wgsl reads B 4 columns at a time where it is contiguous.
// The includer supplies the operands and the epilogue (see lib/gemm_tiled.wgsl for the contract):
//   fn gemm_a(row: u32, kk: u32) -> f32;  fn gemm_b(kk: u32, col: u32) -> f32  (called in bounds)
//   fn gemm_out(row: u32, col: u32, acc: f32)   the epilogue: whatever runs before the store
// and `params` with m, n, k (u32).
// Entry `gemm_rows_main` (body gemm_rows_block). Dispatch: (ceil(n / GEMM_COLS), ceil(m / 4)).
// lib/gemm_split.wgsl reuses the tile over a slice of k.
//! include lib/gate.wgsl

override GEMM_COLS: u32 = 64u;

// A[r0 .. r0 + 3, k0 + i] in gemm_a_rows[i] (rows past m and k past the slice are 0).
var<workgroup> gemm_a_rows: array<vec4<f32>, GEMM_COLS>;

// Stages A[r0 .. r0 + 3, k0 .. k0 + GEMM_COLS) ∩ [k0, k_end) (each thread one k); the caller
// brackets it with barriers.
fn gemm_stage_a(lid: u32, r0: u32, k0: u32, k_end: u32) {
  let kk = k0 + lid;
  var value = vec4<f32>(0.0);
  if (kk < k_end) {
    for (var t = 0u; t < 4u; t++) {
      if (r0 + t < params.m) { value[t] = gemm_a(r0 + t, kk); }
    }
  }
  gemm_a_rows[lid] = value;
}

// Σ_{k_start ≤ kk < k_end} A[r0 + t, kk] · B[kk, col] for t = 0..3 (rows past m count 0).
fn gemm_rows_tile(lid: u32, col: u32, r0: u32, k_start: u32, k_end: u32) -> vec4<f32> {
  var acc = vec4<f32>(0.0);
  for (var k0 = k_start; k0 < k_end; k0 += GEMM_COLS) {
    gemm_stage_a(lid, r0, k0, k_end);
    workgroupBarrier();
    if (col < params.n) {
      let steps = min(GEMM_COLS, k_end - k0);
      var s = 0u;
      for (; s + 8u <= steps; s += 8u) {
        let kk = k0 + s;
        let b0 = gemm_b(kk, col);
        let b1 = gemm_b(kk + 1u, col);
        let b2 = gemm_b(kk + 2u, col);
        let b3 = gemm_b(kk + 3u, col);
        let b4 = gemm_b(kk + 4u, col);
        let b5 = gemm_b(kk + 5u, col);
        let b6 = gemm_b(kk + 6u, col);
        let b7 = gemm_b(kk + 7u, col);
        acc += gemm_a_rows[s] * b0;
        acc += gemm_a_rows[s + 1u] * b1;
        acc += gemm_a_rows[s + 2u] * b2;
        acc += gemm_a_rows[s + 3u] * b3;
        acc += gemm_a_rows[s + 4u] * b4;
        acc += gemm_a_rows[s + 5u] * b5;
        acc += gemm_a_rows[s + 6u] * b6;
        acc += gemm_a_rows[s + 7u] * b7;
      }
      for (; s < steps; s++) { acc += gemm_a_rows[s] * gemm_b(k0 + s, col); }
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
