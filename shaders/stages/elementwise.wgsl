// Elementwise activation stage, by params.op: OP_TANH, OP_RELU or OP_GELU (the tanh approximation,
// jax.nn.gelu's default). src/layers/stages/elementwise.ts reads the codes from this file (build-
// time reflection), so they are declared here only:
// entry `forward_main`:  y[i] = act(x[i])
// entry `adjoint_main`:  g_in[i] = g_out[i] · act'(x[i])
// Bindings: gate; params {n, op}; x [n]; forward: y [n]; adjoint: g_out [n], g_in [n].
// Dispatch: grid_groups(n) (src/layers/stages/grid.ts), 256 threads, grid-stride.

//! include lib/gate.wgsl
//! include lib/activations.wgsl
//! include lib/grid.wgsl

struct ElementwiseParams { n: u32, op: u32 }

@group(0) @binding(1) var<uniform> params: ElementwiseParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> g_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_in: array<f32>;

const OP_TANH: u32 = 0u;
const OP_RELU: u32 = 1u;
const OP_GELU: u32 = 2u;
const GELU_C: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

fn activation(v: f32) -> f32 {
  if (params.op == OP_TANH) { return safe_tanh(v); }
  if (params.op == OP_RELU) { return max(v, 0.0); }
  // OP_GELU
  return 0.5 * v * (1.0 + safe_tanh(GELU_C * (v + GELU_A * v * v * v)));
}

fn activation_slope(v: f32) -> f32 {
  if (params.op == OP_TANH) {
    let t = safe_tanh(v);
    return 1.0 - t * t;
  }
  if (params.op == OP_RELU) { return select(0.0, 1.0, v > 0.0); }
  // OP_GELU
  let t = safe_tanh(GELU_C * (v + GELU_A * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * v * v);
}

@compute @workgroup_size(256)
fn forward_main(@builtin(global_invocation_id) id: vec3u,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  for (var i = id.x; i < params.n; i += grid_stride(groups)) { y[i] = activation(x[i]); }
}

@compute @workgroup_size(256)
fn adjoint_main(@builtin(global_invocation_id) id: vec3u,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  for (var i = id.x; i < params.n; i += grid_stride(groups)) { g_in[i] = g_out[i] * activation_slope(x[i]); }
}
