// The tanh block's parameters and inputs, shared by its forward and adjoint-δ kernels (each adds
// its own output bindings from binding 6 on). Binding 0 is the gate (lib/gate.wgsl).
// params: d, batch, and the dropout members of lib/dropout.wgsl.
// Each kernel file defines what it makes of y = tanh(u @ w + qd + b) and where it goes:
//   fn block_result(y: f32, i: u32) -> f32   (forward: y; adjoint: ḡ·(1 − y²))
//   fn block_store(i: u32, value: f32)
// and takes its entry point from the tiling it is composed with (lib/block_tile.wgsl for 4 rows,
// lib/block_mm.wgsl for 64), which calls block_emit for every element of its tile.

//! include lib/gate.wgsl
//! include lib/dropout.wgsl
//! include lib/activations.wgsl

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

// Dropout's stream key of this evaluation, or 0 when no mask applies (lib/dropout.wgsl).
fn block_noise_key(dropout: bool) -> u32 {
  if (dropout) { return dropout_stream_key(); }
  return 0u;
}

// Writes element i (column j) from the product acc: the kernel's result of y, times the
// evaluation's dropout factor when `dropout` (the adjoint thus applies the forward's mask).
fn block_emit(acc: f32, i: u32, j: u32, dropout: bool, stream_key: u32) {
  var value = block_result(block_activation(acc, i, j), i);
  if (dropout) { value = dropout_apply(value, stream_key, i); }
  block_store(i, value);
}
