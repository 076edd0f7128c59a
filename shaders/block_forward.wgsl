// Tanh implicit block, forward:  out[r, j] = tanh( Σ_k u[r, k] · w[k, j] + qd[r, j] + b[j] )
// times the dropout factor mask[r·d + j] / (1 − rate) when dropout is on (lib/dropout.wgsl).
// (includes lib/gate.wgsl, lib/rng.wgsl, lib/dropout.wgsl, lib/activations.wgsl, lib/block_io.wgsl, lib/block_tile.wgsl)
// Bindings: gate (binding 0, from lib/gate.wgsl); params {d, batch, dropout}; u [batch, d];
//           qd [batch, d]; w [d, d] row-major; b [d]; out [batch, d].
// Dispatch: (ceil(d / 64), ceil(batch / 4)): one 4 × 64 output tile per workgroup.

@group(0) @binding(6) var<storage, read_write> out: array<f32>;

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
      var y = block_activation(acc[t], i, j);
      if (dropout) { y = dropout_apply(y, stream_key, i); }
      out[i] = y;
    }
  }
}
