// Tanh implicit block, first step of the adjoint: recomputes y = tanh(u @ w + qd + b) and
//   delta[r, j] = g_out[r, j] · (1 − y[r, j]²)
// times the forward's dropout factor mask[r·d + j] / (1 − rate) when dropout is on (the same gate
// words give the same mask, lib/dropout.wgsl). delta is also ∂Qd (so a caller that wants ∂Qd
// passes that buffer as delta). Included with either tiling, like block_forward.wgsl
// (block_delta_tile.wgsl, block_delta_mm.wgsl).
// Bindings: gate; params {d, batch, dropout}; u, qd, g_out [batch, d]; w [d, d]; b [d]; delta [batch, d].

//! include lib/block_io.wgsl

@group(0) @binding(6) var<storage, read> g_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> delta: array<f32>;

fn block_result(y: f32, i: u32) -> f32 { return g_out[i] * (1.0 - y * y); }
fn block_store(i: u32, value: f32) { delta[i] = value; }
