// The tanh block's pre-activation tile, shared by its forward and adjoint kernels:
//   z[r, j] − qd − b = Σ_k u[r, k] · w[k, j]   for ROWS rows r0.. and the column j of this thread.
// A workgroup of 64 threads covers 64 columns; the u rows of the tile are staged in workgroup
// memory TILE_K columns at a time, and every thread streams one column of w (coalesced across
// the workgroup), reusing each w value for ROWS rows.
// The including kernel declares `params` (with d, batch), `u` and `w`; the entry point `main`
// writes each value of the tile through lib/block_io.wgsl's block_emit.
// Dispatch: (ceil(d / 64), ceil(batch / 4)): one 4 × 64 output tile per workgroup.

//! include lib/block_io.wgsl

const COLS: u32 = 64u;
const ROWS: u32 = 4u;
const TILE_K: u32 = 64u;

var<workgroup> u_tile: array<f32, 256>; // ROWS * TILE_K

fn tile_matmul(lid: u32, j: u32, r0: u32) -> vec4<f32> {
  let d = params.d;
  var acc = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < d; k0 += TILE_K) {
    for (var t = 0u; t < ROWS; t++) {
      let r = r0 + t;
      let k = k0 + lid;
      var value = 0.0;
      if (r < params.batch && k < d) { value = u[r * d + k]; }
      u_tile[t * TILE_K + lid] = value;
    }
    workgroupBarrier();
    if (j < d) {
      let k_end = min(TILE_K, d - k0);
      for (var kk = 0u; kk < k_end; kk++) {
        let wv = w[(k0 + kk) * d + j];
        acc += vec4<f32>(u_tile[kk], u_tile[TILE_K + kk], u_tile[2u * TILE_K + kk], u_tile[3u * TILE_K + kk]) * wv;
      }
    }
    workgroupBarrier();
  }
  return acc;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let j = group.x * COLS + lid;
  let r0 = group.y * ROWS;
  let acc = tile_matmul(lid, j, r0);
  if (j >= params.d) { return; }
  let dropout = dropout_active();
  let stream_key = block_noise_key(dropout);
  for (var t = 0u; t < ROWS; t++) {
    let r = r0 + t;
    if (r < params.batch) { block_emit(acc[t], r * params.d + j, j, dropout, stream_key); }
  }
}
