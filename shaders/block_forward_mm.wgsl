// Tanh implicit block, forward for many rows (see lib/block_mm.wgsl for the 64 × 64 tiling):
//   out[r, j] = tanh( Σ_k u[r, k] · w[k, j] + qd[r, j] + b[j] )   (then dropout, as block_forward.wgsl)
// (includes lib/gate.wgsl, lib/rng.wgsl, lib/dropout.wgsl, lib/activations.wgsl, lib/block_io.wgsl, lib/block_mm.wgsl)
// Bindings: gate; params {d, batch, dropout}; u, qd [batch, d]; w [d, d]; b [d]; out [batch, d].
// Dispatch: (ceil(d / 64), ceil(batch / 64)).

@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_id) local: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let accs = mm_tile(group, local, lid);
  let dropout = dropout_active();
  var stream_key = 0u;
  if (dropout) { stream_key = dropout_stream_key(); }
  for (var a = 0u; a < 4u; a++) {
    let r = group.y * TILE + local.y * 4u + a;
    if (r >= params.batch) { break; }
    for (var c = 0u; c < 4u; c++) {
      let j = group.x * TILE + local.x * 4u + c;
      if (j < params.d) {
        let i = r * params.d + j;
        var y = block_activation(accs[a][c], i, j);
        if (dropout) { y = dropout_apply(y, stream_key, i); }
        out[i] = y;
      }
    }
  }
}
