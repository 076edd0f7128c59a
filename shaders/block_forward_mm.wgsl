// Tanh implicit block, forward for many rows, register-tiled:
//   out[r, j] = tanh( Σ_k u[r, k] · w[k, j] + qd[r, j] + b[j] )   (then dropout, as block_forward.wgsl)
// A workgroup of 16 × 16 threads computes a 64 × 64 output tile, each thread a 4 × 4 block held in
// registers. Per step of 16 k, the 64 × 16 slice of u and the 16 × 64 slice of w are staged in
// workgroup memory (both loaded coalesced), so every w value fetched from memory serves 64 rows
// (the 4-row tiled kernel re-reads w once per 4 rows).
// (includes lib/gate.wgsl, lib/rng.wgsl, lib/dropout.wgsl, lib/activations.wgsl)
// Bindings: gate; params {d, batch, dropout}; u, qd [batch, d]; w [d, d]; b [d]; out [batch, d].
// Dispatch: (ceil(d / 64), ceil(batch / 64)).

const TILE: u32 = 64u;
const STEP_K: u32 = 16u;
const U_PITCH: u32 = 17u; // padded row of the u slice: avoids bank conflicts on column reads

struct BlockParams { d: u32, batch: u32, drop_threshold: u32, drop_scale: f32, drop_per_solve: u32 }

@group(0) @binding(1) var<uniform> params: BlockParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> u_slice: array<f32, 1088>; // 64 rows × U_PITCH
var<workgroup> w_slice: array<f32, 1024>; // 16 k × 64 columns

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_id) local: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
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
  let dropout = dropout_active();
  var stream_key = 0u;
  if (dropout) { stream_key = dropout_stream_key(); }
  let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var a = 0u; a < 4u; a++) {
    let r = r0 + local.y * 4u + a;
    if (r >= params.batch) { break; }
    for (var c = 0u; c < 4u; c++) {
      let j = j0 + local.x * 4u + c;
      if (j < d) {
        let i = r * d + j;
        var y = safe_tanh(accs[a][c] + qd[i] + b[j]);
        if (dropout) { y = dropout_apply(y, stream_key, i); }
        out[i] = y;
      }
    }
  }
}
