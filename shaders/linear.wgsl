// Dense (affine) layer y = x·W + b and its adjoints, as one tiled matrix product C = A·B with
// three index maps (row-major x [rows, in], W [in, out], y and dy [rows, out], b [out]):
// entry `forward_main`:      y  = x·W + b     A = x  [rows, in],  B = W  [in, out]    (M, N, K) = (rows, out, in)
// entry `input_grad_main`:   dx = dy·Wᵀ       A = dy [rows, out], B = Wᵀ [out, in]    (M, N, K) = (rows, in, out)
// entry `weight_grad_main`:  dW = xᵀ·dy       A = xᵀ [in, rows],  B = dy [rows, out]  (M, N, K) = (in, out, rows)
// entry `bias_grad_main`:    db = Σ_rows dy   (params m = rows, n = out)
// Every output element is summed by one thread in a fixed k order: results are deterministic.
// Every entry does nothing when the gate (lib/gate.wgsl) is closed: as a stage of a sequential
// implicit layer the kernels run inside solves; outside, callers pass an open gate.
// Bindings: gate; params {m, n, k}; a (x or dy) [read]; bm (W or dy) [read]; bias b [out] [read];
//           c (y, dx or dW) [M, N]; for bias_grad_main: a = dy, c = db [out].
// Dispatch: matmul entries (ceil(N / 64), ceil(M / 64)): one 64 × 64 tile of C per workgroup;
//           bias_grad_main (ceil(out / 64)).

//! include lib/gate.wgsl

struct GemmParams { m: u32, n: u32, k: u32 }

@group(0) @binding(1) var<uniform> params: GemmParams;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> bm: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
// 256 threads as 16 × 16; each owns a 4 × 4 block of C at stride 16, so that consecutive threads
// write consecutive columns.
const SIDE: u32 = 16u;

// k-major tiles: the inner loop reads a_tile[kk][·] and b_tile[kk][·].
var<workgroup> a_tile: array<f32, 1024>; // TILE_K × TILE_M
var<workgroup> b_tile: array<f32, 1024>; // TILE_K × TILE_N

// A[i, kk] = a[i·a_sm + kk·a_sk], B[kk, j] = bm[kk·b_sk + j·b_sn]. Returns the thread's 4 × 4
// block, row t of the block in element t (columns tx, tx + 16, tx + 32, tx + 48).
fn gemm_tile(group: vec2u, lid: u32, a_sm: u32, a_sk: u32, b_sk: u32, b_sn: u32) -> array<vec4<f32>, 4> {
  let m0 = group.y * TILE_M;
  let n0 = group.x * TILE_N;
  let tx = lid % SIDE;
  let ty = lid / SIDE;
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
    for (var e = 0u; e < 4u; e++) {
      let t = lid + e * 256u;
      // Walk the tile along whichever index is contiguous in memory, so loads coalesce.
      var mm = t % TILE_M;
      var ka = t / TILE_M;
      if (a_sk == 1u) { mm = t / TILE_K; ka = t % TILE_K; }
      let gm = m0 + mm;
      let gka = k0 + ka;
      var av = 0.0;
      if (gm < params.m && gka < params.k) { av = a[gm * a_sm + gka * a_sk]; }
      a_tile[ka * TILE_M + mm] = av;

      var nn = t % TILE_N;
      var kb = t / TILE_N;
      if (b_sn != 1u) { nn = t / TILE_K; kb = t % TILE_K; }
      let gn = n0 + nn;
      let gkb = k0 + kb;
      var bv = 0.0;
      if (gn < params.n && gkb < params.k) { bv = bm[gkb * b_sk + gn * b_sn]; }
      b_tile[kb * TILE_N + nn] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let row = kk * TILE_N + tx;
      let bv = vec4<f32>(b_tile[row], b_tile[row + SIDE], b_tile[row + 2u * SIDE], b_tile[row + 3u * SIDE]);
      let col = kk * TILE_M + ty;
      acc[0] += a_tile[col] * bv;
      acc[1] += a_tile[col + SIDE] * bv;
      acc[2] += a_tile[col + 2u * SIDE] * bv;
      acc[3] += a_tile[col + 3u * SIDE] * bv;
    }
    workgroupBarrier();
  }
  return acc;
}

// Writes the thread's block into c [M, N], adding shift[s] to column s of the block. (Only
// forward_main reads `bias`, so the adjoint entry points do not bind it.)
fn store_tile(group: vec2u, lid: u32, acc: array<vec4<f32>, 4>, shift: vec4<f32>) {
  let tx = lid % SIDE;
  let ty = lid / SIDE;
  for (var t = 0u; t < 4u; t++) {
    let i = group.y * TILE_M + ty + t * SIDE;
    if (i >= params.m) { continue; }
    for (var s = 0u; s < 4u; s++) {
      let j = group.x * TILE_N + tx + s * SIDE;
      if (j >= params.n) { continue; }
      c[i * params.n + j] = acc[t][s] + shift[s];
    }
  }
}

@compute @workgroup_size(256)
fn forward_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  // x [rows, in]: (a_sm, a_sk) = (in, 1); W [in, out]: (b_sk, b_sn) = (out, 1).
  let acc = gemm_tile(group.xy, lid, params.k, 1u, params.n, 1u);
  var shift = vec4<f32>(0.0);
  for (var s = 0u; s < 4u; s++) {
    let j = group.x * TILE_N + lid % SIDE + s * SIDE;
    if (j < params.n) { shift[s] = bias[j]; }
  }
  store_tile(group.xy, lid, acc, shift);
}

@compute @workgroup_size(256)
fn input_grad_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  // dy [rows, out]: (a_sm, a_sk) = (out, 1); Wᵀ[kk, j] = W[j, kk] = bm[j·out + kk]: (b_sk, b_sn) = (1, out).
  let acc = gemm_tile(group.xy, lid, params.k, 1u, 1u, params.k);
  store_tile(group.xy, lid, acc, vec4<f32>(0.0));
}

@compute @workgroup_size(256)
fn weight_grad_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  // xᵀ[i, kk] = x[kk, i] = a[kk·in + i]: (a_sm, a_sk) = (1, in); dy [rows, out]: (b_sk, b_sn) = (out, 1).
  let acc = gemm_tile(group.xy, lid, 1u, params.m, params.n, 1u);
  store_tile(group.xy, lid, acc, vec4<f32>(0.0));
}

@compute @workgroup_size(64)
fn bias_grad_main(@builtin(global_invocation_id) id: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let j = id.x;
  if (j >= params.n) { return; }
  var sum = 0.0;
  for (var r = 0u; r < params.m; r++) { sum += a[r * params.n + j]; }
  c[j] = sum;
}
