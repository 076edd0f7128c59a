// Tanh implicit block, forward:  out[r, j] = tanh( Σ_k u[r, k] · w[k, j] + qd[r, j] + b[j] )
// (includes lib/gate.wgsl, lib/activations.wgsl)
// Bindings: gate (binding 0, from lib/gate.wgsl); params {d, batch}; u [batch, d]; qd [batch, d];
//           w [d, d] row-major; b [d]; out [batch, d].
// Dispatch: (ceil(d / 64), ceil(batch / ROWS)). Each workgroup computes a ROWS × 64 output tile:
// the u rows of the tile are staged in workgroup memory TILE_K columns at a time, and every thread
// streams one column of w (coalesced across the workgroup), reusing each w value for ROWS rows.

const COLS: u32 = 64u;
const ROWS: u32 = 4u;
const TILE_K: u32 = 64u;

struct BlockParams { d: u32, batch: u32 }

@group(0) @binding(1) var<uniform> params: BlockParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> u_tile: array<f32, 256>; // ROWS * TILE_K

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let d = params.d;
  let j = group.x * COLS + lid;
  let r0 = group.y * ROWS;
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
  if (j >= d) { return; }
  for (var t = 0u; t < ROWS; t++) {
    let r = r0 + t;
    if (r < params.batch) {
      let i = r * d + j;
      out[i] = safe_tanh(acc[t] + qd[i] + b[j]);
    }
  }
}
