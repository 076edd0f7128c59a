// Dropout stage (inverted): in training mode y[i] = x[i] · mask[i] / (1 − rate), else y = x
// (x_in and y_out: lib/rng.wgsl's argument `x` would shadow a global x in wgsl_reflect's view);
// the adjoint applies the same factor to ȳ. The mask of element i (row-major over the stage's
// whole [batch, size] tensor) is drawn like the tanh block's (lib/dropout.wgsl) from the solve's
// key xor params.drop_salt (the stage's index in its sequential layer, so two dropout stages of one
// layer draw different masks).
// entry `forward_main`:  y = dropout(x)
// entry `adjoint_main`:  g_in = dropout(g_out), with the forward's mask
// Bindings: gate; params {n, dropout members}; x_in [n]; forward: y_out [n];
//           adjoint: g_out [n], g_in [n].
// Dispatch: grid_groups(n), 256 threads, grid-stride.

//! include lib/gate.wgsl
//! include lib/rng.wgsl
//! include lib/dropout.wgsl
//! include lib/grid.wgsl

struct DropoutStageParams { n: u32, drop_salt: u32, drop_threshold: u32, drop_scale: f32, drop_per_solve: u32 }

@group(0) @binding(1) var<uniform> params: DropoutStageParams;
@group(0) @binding(2) var<storage, read> x_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(4) var<storage, read> g_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_in: array<f32>;

@compute @workgroup_size(256)
fn forward_main(@builtin(global_invocation_id) id: vec3u,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let masked = dropout_active();
  let key = dropout_stream_key();
  for (var i = id.x; i < params.n; i += grid_stride(groups)) {
    y_out[i] = select(x_in[i], dropout_apply(x_in[i], key, i), masked);
  }
}

@compute @workgroup_size(256)
fn adjoint_main(@builtin(global_invocation_id) id: vec3u,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let masked = dropout_active();
  let key = dropout_stream_key();
  for (var i = id.x; i < params.n; i += grid_stride(groups)) {
    g_in[i] = select(g_out[i], dropout_apply(g_out[i], key, i), masked);
  }
}
