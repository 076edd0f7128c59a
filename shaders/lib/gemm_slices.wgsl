// The dense-product library, few rows with k split inside the workgroup: C = A·B for C [m, n],
// 4 rows × 4·GEMM_QUADS columns per workgroup of GEMM_QUADS · GEMM_SLICES threads. Thread
// lid = s·GEMM_QUADS + q takes column quad q (4 adjacent columns) and the values of k ≡ s modulo
// GEMM_SLICES, then the slices' 4 × 4 partial blocks are summed in workgroup memory.
// Why: split-k (lib/gemm_split.wgsl) gives a GEMV with few rows enough workgroups by spreading k
// over workgroups, so no workgroup holds a complete output and an epilogue that needs the finished
// value (a fused step's measurement, which reduces over the outputs) takes a dispatch of its own.
// Here k is spread over the threads of one workgroup instead: as many workgroups as the columns
// allow (ceil(n / (4·GEMM_QUADS)) per 4 rows), every output complete in the workgroup that owns
// it, and the epilogue (gemm_out) runs in the same dispatch.
// Order: each thread sums its values of k in increasing order, the first 4·GEMM_QUADS threads
// then add the GEMM_SLICES partial sums in increasing s: deterministic (the same bits run to run),
// but not the bits of lib/gemm_rows.wgsl's order.
// A is staged GEMM_SLICE_BLOCK · GEMM_SLICES values of k at a time (the 4 rows as one vec4 per k);
// each thread issues GEMM_SLICE_BLOCK loads of B before the updates that use them.
// The includer supplies lib/gemm_rows.wgsl's contract (gemm_a, gemm_b, gemm_out, params.m/n/k)
// and lib/gemm_weight4.wgsl's gemm_b4; the override GEMM_VEC4 picks the loads of B: vec4
// (gemm_b4, n a multiple of 4) or four scalar gemm_b (any n; columns past n count 0). Either way
// the entry point binds both operands' buffers (WGSL has no other way to pick a function).
// Body `gemm_slices_block(group, lid)`: dispatch (ceil(n / (4·GEMM_QUADS)), ceil(m / 4)); gemm_out
// is called by threads lid < 4·GEMM_QUADS only, each for one row of 4 columns.

override GEMM_QUADS: u32 = 2u;
override GEMM_SLICES: u32 = 32u;
override GEMM_VEC4: bool = true;
// The workgroup's threads (an entry's @workgroup_size).
override GEMM_SLICE_THREADS: u32 = GEMM_QUADS * GEMM_SLICES;

// Values of k per slice in one staged span (the loads of B in flight per thread).
const GEMM_SLICE_BLOCK: u32 = 8u;
// Staging and partial sums share one array: A's span (GEMM_SLICE_BLOCK · GEMM_SLICES vec4), then
// each thread's 4 × 4 partial block (4 · GEMM_QUADS · GEMM_SLICES vec4). 256 vec4 = 4 KiB; the
// host derives its sizes from these two constants (src/layers/dense.ts, reflected): 32 slices, 2 quads.
const GEMM_SLICE_SCRATCH: u32 = 256u;
var<workgroup> gemm_slice_scratch: array<vec4<f32>, GEMM_SLICE_SCRATCH>;

// B[kk, col .. col + 3] (past n: 0).
fn gemm_slices_b(kk: u32, col: u32) -> vec4<f32> {
  if (GEMM_VEC4) { return gemm_b4(kk, col); }
  var b = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (col + c < params.n) { b[c] = gemm_b(kk, col + c); }
  }
  return b;
}

// acc[t] += a[t] · b (row t of the block).
fn gemm_slices_add(acc: ptr<function, array<vec4<f32>, 4>>, a: vec4<f32>, b: vec4<f32>) {
  (*acc)[0] += a.x * b;
  (*acc)[1] += a.y * b;
  (*acc)[2] += a.z * b;
  (*acc)[3] += a.w * b;
}

// This thread's partial block: Σ over its values of k of A[r0 + t, kk] · B[kk, col .. col + 3].
fn gemm_slices_partial(lid: u32, s: u32, col: u32, r0: u32) -> array<vec4<f32>, 4> {
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  let span = GEMM_SLICE_BLOCK * GEMM_SLICES;
  for (var k0 = 0u; k0 < params.k; k0 += span) {
    for (var j = lid; j < span; j += GEMM_SLICE_THREADS) {
      let kk = k0 + j;
      var value = vec4<f32>(0.0);
      if (kk < params.k) {
        for (var t = 0u; t < 4u; t++) {
          if (r0 + t < params.m) { value[t] = gemm_a(r0 + t, kk); }
        }
      }
      gemm_slice_scratch[j] = value;
    }
    workgroupBarrier();
    if (col < params.n) {
      // Values j = s + GEMM_SLICES·i of the span; all GEMM_SLICE_BLOCK of them when the span is whole.
      if (k0 + span <= params.k) {
        var b: array<vec4<f32>, GEMM_SLICE_BLOCK>;
        for (var i = 0u; i < GEMM_SLICE_BLOCK; i++) { b[i] = gemm_slices_b(k0 + s + GEMM_SLICES * i, col); }
        for (var i = 0u; i < GEMM_SLICE_BLOCK; i++) { gemm_slices_add(&acc, gemm_slice_scratch[s + GEMM_SLICES * i], b[i]); }
      } else {
        for (var j = s; k0 + j < params.k; j += GEMM_SLICES) {
          gemm_slices_add(&acc, gemm_slice_scratch[j], gemm_slices_b(k0 + j, col));
        }
      }
    }
    workgroupBarrier();
  }
  return acc;
}

// Workgroup `group`'s 4 × 4·GEMM_QUADS block of C, each value handed to gemm_out.
fn gemm_slices_block(group: vec3u, lid: u32) {
  let q = lid % GEMM_QUADS;
  let s = lid / GEMM_QUADS;
  let r0 = group.y * 4u;
  let col = 4u * (group.x * GEMM_QUADS + q);
  let acc = gemm_slices_partial(lid, s, col, r0);
  for (var t = 0u; t < 4u; t++) { gemm_slice_scratch[4u * lid + t] = acc[t]; }
  workgroupBarrier();
  // Thread lid < 4·GEMM_QUADS: row t = lid / GEMM_QUADS of quad q, the slices in increasing s.
  if (lid < 4u * GEMM_QUADS) {
    let t = lid / GEMM_QUADS;
    var total = vec4<f32>(0.0);
    for (var slice = 0u; slice < GEMM_SLICES; slice++) {
      total += gemm_slice_scratch[4u * (slice * GEMM_QUADS + q) + t];
    }
    if (r0 + t < params.m) {
      for (var c = 0u; c < 4u; c++) {
        if (col + c < params.n) { gemm_out(r0 + t, col + c, total[c]); }
      }
    }
  }
}
