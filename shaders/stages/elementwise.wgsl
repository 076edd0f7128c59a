// Elementwise activation stage, by params.op (an OP_* code of lib/activations.wgsl):
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

@compute @workgroup_size(256)
fn forward_main(@builtin(global_invocation_id) id: vec3u,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  for (var i = id.x; i < params.n; i += grid_stride(groups)) { y[i] = act_value(params.op, x[i]); }
}

@compute @workgroup_size(256)
fn adjoint_main(@builtin(global_invocation_id) id: vec3u,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  for (var i = id.x; i < params.n; i += grid_stride(groups)) { g_in[i] = g_out[i] * act_slope(params.op, x[i]); }
}
