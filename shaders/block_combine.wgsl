// Tanh implicit block, split-K forward, second pass:
//   out[i] = tanh( Σ_s partial[s, i] + qd[i] + b[i mod d] )   (then dropout, as block_forward.wgsl)
// Summed over s in order: deterministic.
// Bindings: gate; params {d, batch, splits, dropout}; partial [splits, batch, d]; qd [batch, d]; b [d];
//           out [batch, d].
// Dispatch: (ceil(batch · d / 256)).

//! include lib/gate.wgsl
//! include lib/dropout.wgsl
//! include lib/activations.wgsl

struct CombineParams { d: u32, batch: u32, splits: u32, drop_threshold: u32, drop_scale: f32, drop_per_solve: u32 }

@group(0) @binding(1) var<uniform> params: CombineParams;
@group(0) @binding(2) var<storage, read> partial: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let n = params.batch * params.d;
  let i = id.x;
  if (i >= n) { return; }
  var z = qd[i] + b[i % params.d];
  for (var s = 0u; s < params.splits; s++) { z += partial[s * n + i]; }
  var y = safe_tanh(z);
  if (dropout_active()) { y = dropout_apply(y, dropout_stream_key(), i); }
  out[i] = y;
}
