// The dense-product library, one row per workgroup, B read 4 columns at a time (vec4 loads; B is
// [k, n] row-major with n a multiple of 4): the few-row body for a CPU adapter at one row
// (src/layers/dense.ts plan). A workgroup of GEMM_ROW_THREADS threads computes row group.y ×
// 16·GEMM_ROW_THREADS columns, each thread four vec4 column groups GEMM_ROW_THREADS quads apart
// (contiguous loads across the workgroup for each), from one row of A staged as plain floats.
// Why a body of its own: on SwiftShader a workgroup runs on one CPU thread, its cost follows the
// work of its invocations and the workgroup memory it declares (docs/swiftshader-costs.md), so
// lib/gemm_rows_vec4.wgsl's 4 rows × 4 columns per thread at one row spend three quarters of their
// multiply-adds and staging on rows that do not exist; 16 columns of one row per thread do not.
// Each output sums k in increasing order, as the other few-row bodies do.
// The includer supplies lib/gemm_rows_vec4.wgsl's operands (gemm_a, gemm_b4, gemm_out, `params`
// with m, n, k).
// Entry `gemm_row_main` (body gemm_row_block). Dispatch: (ceil(n / (16·GEMM_ROW_THREADS)), m).
//! include lib/gate.wgsl

override GEMM_ROW_THREADS: u32 = 16u;

// Values of A's row staged per round: four per thread.
const GEMM_ROW_STAGE: u32 = 4u;
var<workgroup> gemm_a_row: array<f32, GEMM_ROW_THREADS * GEMM_ROW_STAGE>;

// Σ_kk A[row, kk] · B[kk, 4q .. 4q + 3] for the thread's quads q = quad0 + j·GEMM_ROW_THREADS,
// j = 0..3 (a quad past the last is read at the last one and never stored).
fn gemm_row_tile(lid: u32, row: u32, quad0: u32) -> array<vec4<f32>, 4> {
  let quads = params.n / 4u;
  let last = quads - 1u;
  let c0 = 4u * min(quad0, last);
  let c1 = 4u * min(quad0 + GEMM_ROW_THREADS, last);
  let c2 = 4u * min(quad0 + 2u * GEMM_ROW_THREADS, last);
  let c3 = 4u * min(quad0 + 3u * GEMM_ROW_THREADS, last);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  let chunk = GEMM_ROW_THREADS * GEMM_ROW_STAGE;
  for (var k0 = 0u; k0 < params.k; k0 += chunk) {
    for (var s = 0u; s < GEMM_ROW_STAGE; s++) {
      let kk = k0 + s * GEMM_ROW_THREADS + lid;
      var value = 0.0;
      if (kk < params.k) { value = gemm_a(row, kk); }
      gemm_a_row[s * GEMM_ROW_THREADS + lid] = value;
    }
    workgroupBarrier();
    let steps = min(chunk, params.k - k0);
    for (var s = 0u; s < steps; s++) {
      let a = gemm_a_row[s];
      let kk = k0 + s;
      acc0 += a * gemm_b4(kk, c0);
      acc1 += a * gemm_b4(kk, c1);
      acc2 += a * gemm_b4(kk, c2);
      acc3 += a * gemm_b4(kk, c3);
    }
    workgroupBarrier();
  }
  return array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
}

// Hands the 4 values of quad q (if it exists) to gemm_out.
fn gemm_row_store(row: u32, q: u32, value: vec4<f32>) {
  if (4u * q + 3u >= params.n) { return; }
  let col = 4u * q;
  gemm_out(row, col, value.x);
  gemm_out(row, col + 1u, value.y);
  gemm_out(row, col + 2u, value.z);
  gemm_out(row, col + 3u, value.w);
}

// Workgroup `group`'s row and columns of C, each value handed to gemm_out (the body of
// gemm_row_main, for kernels that wrap the product in their own prologue and epilogue).
fn gemm_row_block(group: vec3u, lid: u32) {
  let row = group.y;
  let quad0 = group.x * 4u * GEMM_ROW_THREADS + lid;
  let acc = gemm_row_tile(lid, row, quad0);
  gemm_row_store(row, quad0, acc[0]);
  gemm_row_store(row, quad0 + GEMM_ROW_THREADS, acc[1]);
  gemm_row_store(row, quad0 + 2u * GEMM_ROW_THREADS, acc[2]);
  gemm_row_store(row, quad0 + 3u * GEMM_ROW_THREADS, acc[3]);
}

@compute @workgroup_size(GEMM_ROW_THREADS)
fn gemm_row_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_row_block(group, lid);
}
