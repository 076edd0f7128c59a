// The dense-product library, many rows: C = A·B for C [m, n], register-tiled. A workgroup of
// GEMM_SIDE² threads computes a (GEMM_PER·GEMM_SIDE)² tile of C, each thread a GEMM_PER ×
// GEMM_PER block (4 × 4, or 8 × 8 for the largest products) at stride GEMM_SIDE (so neighbouring
// threads store neighbouring columns). Per step of GEMM_STEP values of k the A and B slices are
// staged in workgroup memory, each loaded along whichever index is contiguous in memory
// (GEMM_A_K_CONTIGUOUS: A is [m, k] row-major, as x in x·W; false for xᵀ. GEMM_B_N_CONTIGUOUS: B
// is [k, n] row-major, as W; false for Wᵀ), so loads coalesce. src/layers/dense.ts picks the
// tiling per product (tileShapes, chooseTile).
// Each output is summed by one thread in increasing k: deterministic, and the same bits whatever
// the tiling.
//
// The contract of the library's pieces (this one, lib/gemm_rows.wgsl, lib/gemm_split.wgsl): the
// includer declares `params` with m, n, k (u32) and
//   fn gemm_a(row: u32, kk: u32) -> f32       A[row, kk], called only in bounds
//   fn gemm_b(kk: u32, col: u32) -> f32       B[kk, col], called only in bounds
//   fn gemm_out(row: u32, col: u32, acc: f32) the epilogue hook: runs on each value of C (add a
//                                             bias, a fused chain of stages, …) and stores it.
// Entry `gemm_tiled_main` (body gemm_tiled_block). Dispatch: (ceil(n / (GEMM_PER·GEMM_SIDE)), ceil(m / (GEMM_PER·GEMM_SIDE))).
//! include lib/gate.wgsl

override GEMM_SIDE: u32 = 16u;
override GEMM_STEP: u32 = 16u;
// 4 or 8: the side of each thread's block of C.
override GEMM_PER: u32 = 4u;
override GEMM_A_K_CONTIGUOUS: bool = true;
override GEMM_B_N_CONTIGUOUS: bool = true;

// k-major slices: the inner loop reads gemm_a_slice[kk][·] and gemm_b_slice[kk][·].
var<workgroup> gemm_a_slice: array<f32, GEMM_STEP * GEMM_PER * GEMM_SIDE>;
var<workgroup> gemm_b_slice: array<f32, GEMM_STEP * GEMM_PER * GEMM_SIDE>;

// Stages A[m0 .., k0 ..] and B[k0 .., n0 ..] (GEMM_STEP values of k, zero outside C and k); the
// caller brackets it with barriers.
fn gemm_tiled_stage(lid: u32, m0: u32, n0: u32, k0: u32) {
  let tile = GEMM_PER * GEMM_SIDE;
  for (var t = lid; t < GEMM_STEP * tile; t += GEMM_SIDE * GEMM_SIDE) {
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
}

// Runs the epilogue on the value at (row, col) of the tile when it is inside C.
fn gemm_tiled_out(row: u32, col: u32, acc: f32) {
  if (row < params.m && col < params.n) { gemm_out(row, col, acc); }
}

// GEMM_PER = 4: a 4 × 4 block per thread.
fn gemm_tiled_block4(lid: u32, m0: u32, n0: u32, tx: u32, ty: u32) {
  let tile = 4u * GEMM_SIDE;
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < params.k; k0 += GEMM_STEP) {
    gemm_tiled_stage(lid, m0, n0, k0);
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
    for (var s = 0u; s < 4u; s++) { gemm_tiled_out(m0 + ty + t * GEMM_SIDE, n0 + tx + s * GEMM_SIDE, acc[t][s]); }
  }
}

// GEMM_PER = 8: an 8 × 8 block per thread, as two 8 × 4 halves (columns tx + s·GEMM_SIDE for
// s < 4 in acc[2t], s ≥ 4 in acc[2t + 1]).
fn gemm_tiled_block8(lid: u32, m0: u32, n0: u32, tx: u32, ty: u32) {
  let tile = 8u * GEMM_SIDE;
  var acc: array<vec4<f32>, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < params.k; k0 += GEMM_STEP) {
    gemm_tiled_stage(lid, m0, n0, k0);
    workgroupBarrier();
    let steps = min(GEMM_STEP, params.k - k0);
    for (var kk = 0u; kk < steps; kk++) {
      let row = kk * tile + tx;
      let lo = vec4<f32>(gemm_b_slice[row], gemm_b_slice[row + GEMM_SIDE], gemm_b_slice[row + 2u * GEMM_SIDE],
                         gemm_b_slice[row + 3u * GEMM_SIDE]);
      let hi = vec4<f32>(gemm_b_slice[row + 4u * GEMM_SIDE], gemm_b_slice[row + 5u * GEMM_SIDE], gemm_b_slice[row + 6u * GEMM_SIDE],
                         gemm_b_slice[row + 7u * GEMM_SIDE]);
      let col = kk * tile + ty;
      for (var t = 0u; t < 8u; t++) {
        let a = gemm_a_slice[col + t * GEMM_SIDE];
        acc[2u * t] += a * lo;
        acc[2u * t + 1u] += a * hi;
      }
    }
    workgroupBarrier();
  }
  for (var t = 0u; t < 8u; t++) {
    for (var s = 0u; s < 4u; s++) {
      gemm_tiled_out(m0 + ty + t * GEMM_SIDE, n0 + tx + s * GEMM_SIDE, acc[2u * t][s]);
      gemm_tiled_out(m0 + ty + t * GEMM_SIDE, n0 + tx + (s + 4u) * GEMM_SIDE, acc[2u * t + 1u][s]);
    }
  }
}

// Workgroup `group`'s tile of C, each value handed to gemm_out (the body of gemm_tiled_main, for
// kernels that wrap the product in their own prologue and epilogue).
fn gemm_tiled_block(group: vec3u, lid: u32) {
  let tile = GEMM_PER * GEMM_SIDE;
  let m0 = group.y * tile;
  let n0 = group.x * tile;
  let tx = lid % GEMM_SIDE;
  let ty = lid / GEMM_SIDE;
  if (GEMM_PER == 8u) { gemm_tiled_block8(lid, m0, n0, tx, ty); } else { gemm_tiled_block4(lid, m0, n0, tx, ty); }
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn gemm_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  gemm_tiled_block(group, lid);
}
