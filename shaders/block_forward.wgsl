// Tanh implicit block, forward:  out[r, j] = tanh( Σ_k u[r, k] · w[k, j] + qd[r, j] + b[j] )
// times the dropout factor mask[r·d + j] / (1 − rate) when dropout is on (lib/dropout.wgsl).
// Not a kernel by itself: block_forward_tile.wgsl and block_forward_mm.wgsl include it with either
// tiling (lib/block_tile.wgsl: 4 rows per workgroup; lib/block_mm.wgsl: 64), which supplies the
// entry point and the dispatch size.
// Bindings: gate (binding 0, from lib/gate.wgsl); params {d, batch, dropout}; u [batch, d];
//           qd [batch, d]; w [d, d] row-major; b [d]; out [batch, d].

//! include lib/block_io.wgsl

@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn block_result(y: f32, i: u32) -> f32 { return y; }
fn block_store(i: u32, value: f32) { out[i] = value; }
