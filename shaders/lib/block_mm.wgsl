// The tanh block's 64 × 64 register-tiled product, shared by its forward and adjoint "matmul"
// kernels:  acc[a][c] = Σ_k u[r0 + 4·ly + a, k] · w[k, j0 + 4·lx + c]
// A workgroup of 16 × 16 threads computes a 64 × 64 tile, each thread a 4 × 4 block held in
// registers. Per step of 16 k, the 64 × 16 slice of u and the 16 × 64 slice of w are staged in
// workgroup memory (both loaded coalesced), so every w value fetched serves 64 rows (the 4-row
// tiled kernel re-reads w once per 4 rows).
// The including kernel declares `params` (with d, batch), `u` and `w`; the entry point `main`
// writes each value of the tile through lib/block_io.wgsl's block_emit.
// Dispatch: (ceil(d / 64), ceil(batch / 64)).

//! include lib/block_io.wgsl

const TILE: u32 = 64u;
const STEP_K: u32 = 16u;
const U_PITCH: u32 = 17u; // padded row of the u slice: avoids bank conflicts on column reads

var<workgroup> u_slice: array<f32, 1088>; // 64 rows × U_PITCH
var<workgroup> w_slice: array<f32, 1024>; // 16 k × 64 columns

fn mm_tile(group: vec3u, local: vec3u, lid: u32) -> array<vec4<f32>, 4> {
  let d = params.d;
  let r0 = group.y * TILE;
  let j0 = group.x * TILE;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < d; k0 += STEP_K) {
    for (var e = 0u; e < 4u; e++) {
      let index = lid + e * 256u;
      let ur = index / STEP_K;
      let uk = index % STEP_K;
      var uv = 0.0;
      if (r0 + ur < params.batch && k0 + uk < d) { uv = u[(r0 + ur) * d + k0 + uk]; }
      u_slice[ur * U_PITCH + uk] = uv;
      let wk = index / TILE;
      let wj = index % TILE;
      var wv = 0.0;
      if (k0 + wk < d && j0 + wj < d) { wv = w[(k0 + wk) * d + j0 + wj]; }
      w_slice[index] = wv;
    }
    workgroupBarrier();
    let row = local.y * 4u * U_PITCH;
    for (var kk = 0u; kk < STEP_K; kk++) {
      let wv = vec4<f32>(w_slice[kk * TILE + local.x * 4u], w_slice[kk * TILE + local.x * 4u + 1u],
                         w_slice[kk * TILE + local.x * 4u + 2u], w_slice[kk * TILE + local.x * 4u + 3u]);
      acc0 += u_slice[row + kk] * wv;
      acc1 += u_slice[row + U_PITCH + kk] * wv;
      acc2 += u_slice[row + 2u * U_PITCH + kk] * wv;
      acc3 += u_slice[row + 3u * U_PITCH + kk] * wv;
    }
    workgroupBarrier();
  }
  return array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_id) local: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let accs = mm_tile(group, local, lid);
  let dropout = dropout_active();
  let stream_key = block_noise_key(dropout);
  for (var a = 0u; a < 4u; a++) {
    let r = group.y * TILE + local.y * 4u + a;
    if (r >= params.batch) { break; }
    for (var c = 0u; c < 4u; c++) {
      let j = group.x * TILE + local.x * 4u + c;
      if (j < params.d) { block_emit(accs[a][c], r * params.d + j, j, dropout, stream_key); }
    }
  }
}
