// The dense-product library, many rows: C = A·B for C [m, n], register-tiled. A workgroup of
// GEMM_SIDE² threads computes a (4·GEMM_SIDE)² tile of C, each thread a 4 × 4 block at stride
// GEMM_SIDE (so neighbouring threads store neighbouring columns). Per step of GEMM_STEP values of k
// the A and B slices are staged in workgroup memory, each loaded along whichever index is
// contiguous in memory (GEMM_A_K_CONTIGUOUS: A is [m, k] row-major, as x in x·W; false for xᵀ.
// GEMM_B_N_CONTIGUOUS: B is [k, n] row-major, as W; false for Wᵀ), so loads coalesce.
// Each output is summed by one thread in increasing k: deterministic.
//
// The contract of the library's pieces (this one, lib/gemm_rows.wgsl, lib/gemm_split.wgsl): the
// includer declares `params` with m, n, k (u32) and
//   fn gemm_a(row: u32, kk: u32) -> f32       A[row, kk], called only in bounds
//   fn gemm_b(kk: u32, col: u32) -> f32       B[kk, col], called only in bounds
//   fn gemm_out(row: u32, col: u32, acc: f32) the epilogue hook: runs on each value of C (add a
//                                             bias, a fused chain of stages, …) and stores it.
// Entry `gemm_tiled_main` (body gemm_tiled_block). Dispatch: (ceil(n / (4·GEMM_SIDE)), ceil(m / (4·GEMM_SIDE))).
//! include lib/gate.wgsl

override GEMM_SIDE: u32 = 16u;
override GEMM_STEP: u32 = 16u;
override GEMM_A_K_CONTIGUOUS: bool = true;
override GEMM_B_N_CONTIGUOUS: bool = true;

// k-major slices: the inner loop reads gemm_a_slice[kk][·] and gemm_b_slice[kk][·].
var<workgroup> gemm_a_slice: array<f32, GEMM_STEP * 4 * GEMM_SIDE>;
var<workgroup> gemm_b_slice: array<f32, GEMM_STEP * 4 * GEMM_SIDE>;

// Workgroup `group`'s tile of C, each value handed to gemm_out (the body of gemm_tiled_main, for
// kernels that wrap the product in their own prologue and epilogue).
fn gemm_tiled_block(group: vec3u, lid: u32) {
  let tile = 4u * GEMM_SIDE;
  let threads = GEMM_SIDE * GEMM_SIDE;
  let m0 = group.y * tile;
  let n0 = group.x * tile;
  let tx = lid % GEMM_SIDE;
  let ty = lid / GEMM_SIDE;
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < params.k; k0 += GEMM_STEP) {
    for (var t = lid; t < GEMM_STEP * tile; t += threads) {
      var mm = t % tile;
      var ka = t / tile;
      if (GEMM_A_K_CONTIGUOUS) { mm = t / GEMM_STEP; ka = t % GEMM_STEP; }
      var av = 0.0;
      if (m0 + mm < params.m && k0 + ka < params.k) { av = gemm_a(m0 + mm, k0 + ka); }
      gemm_a_slice[ka * tile + mm] = av;
      var nn = t % tile;
      var kb = t / tile;
      if (!GEMM_B_N_CONTIGUOUS) { nn = t / GEMM_STEP; kb = t % GEMM_STEP; }
      var bv = 0.0;
      if (n0 + nn < params.n && k0 + kb < params.k) { bv = gemm_b(k0 + kb, n0 + nn); }
      gemm_b_slice[kb * tile + nn] = bv;
    }
    workgroupBarrier();
    let steps = min(GEMM_STEP, params.k - k0);
    for (var kk = 0u; kk < steps; kk++) {
      let row = kk * tile + tx;
      let bv = vec4<f32>(gemm_b_slice[row], gemm_b_slice[row + GEMM_SIDE], gemm_b_slice[row + 2u * GEMM_SIDE],
                         gemm_b_slice[row + 3u * GEMM_SIDE]);
      let col = kk * tile + ty;
      acc[0] += gemm_a_slice[col] * bv;
      acc[1] += gemm_a_slice[col + GEMM_SIDE] * bv;
      acc[2] += gemm_a_slice[col + 2u * GEMM_SIDE] * bv;
      acc[3] += gemm_a_slice[col + 3u * GEMM_SIDE] * bv;
    }
    workgroupBarrier();
  }
  for (var t = 0u; t < 4u; t++) {
    let row = m0 + ty + t * GEMM_SIDE;
    if (row >= params.m) { continue; }
    for (var s = 0u; s < 4u; s++) {
      let col = n0 + tx + s * GEMM_SIDE;
      if (col < params.n) { gemm_out(row, col, acc[t][s]); }
    }
  }
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn gemm_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_tiled_block(group, lid);
}
