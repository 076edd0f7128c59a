// Tanh implicit block, first step of the adjoint: recomputes y = tanh(u @ w + qd + b) and
//   delta[r, j] = g_out[r, j] · (1 − y[r, j]²)
// times the forward's dropout factor mask[r·d + j] / (1 − rate) when dropout is on (the same gate
// words give the same mask, lib/dropout.wgsl). delta is also ∂Qd (so a caller that wants ∂Qd
// passes that buffer as delta).
// (includes lib/gate.wgsl, lib/rng.wgsl, lib/dropout.wgsl, lib/activations.wgsl, lib/block_io.wgsl, lib/block_tile.wgsl)
// Bindings: gate; params {d, batch, dropout}; u, qd, g_out [batch, d]; w [d, d]; b [d]; delta [batch, d].
// Dispatch: (ceil(d / 64), ceil(batch / 4)).

@group(0) @binding(6) var<storage, read> g_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> delta: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let j = group.x * COLS + lid;
  let r0 = group.y * ROWS;
  let acc = tile_matmul(lid, j, r0);
  if (j >= params.d) { return; }
  let dropout = dropout_active();
  var stream_key = 0u;
  if (dropout) { stream_key = dropout_stream_key(); }
  for (var t = 0u; t < ROWS; t++) {
    let r = r0 + t;
    if (r < params.batch) {
      let i = r * params.d + j;
      let y = block_activation(acc[t], i, j);
      var dl = g_out[i] * (1.0 - y * y);
      if (dropout) { dl = dropout_apply(dl, stream_key, i); }
      delta[i] = dl;
    }
  }
}
