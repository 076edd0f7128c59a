// The tanh block's parameters and inputs, shared by its forward and adjoint-δ kernels (each adds
// its own output bindings from binding 6 on). Binding 0 is the gate (lib/gate.wgsl).
// params: d, batch, and the dropout members of lib/dropout.wgsl.

struct BlockParams { d: u32, batch: u32, drop_threshold: u32, drop_scale: f32, drop_per_solve: u32 }

@group(0) @binding(1) var<uniform> params: BlockParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;

// y = tanh(z) for element i (column j) of the state, given z − qd − b = acc.
fn block_activation(acc: f32, i: u32, j: u32) -> f32 {
  return safe_tanh(acc + qd[i] + b[j]);
}
