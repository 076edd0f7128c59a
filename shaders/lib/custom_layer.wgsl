// What a layer written with defineLayer sees (src/layers/define.ts documents it for users):
// sizes, read access to the state, the injected input and (adjoint kernels) ȳ, and randomness
// keyed like the built-in stochastic layers. The layer's parameters are declared after this piece
// as `@binding(6 + k) var<storage, read> <name>: array<f32>`, by the library. It includes
// lib/grid.wgsl for the entry point that comes last (custom_layer_main.wgsl).
// Bindings: gate (0); anchorax_sizes (1); anchorax_u (2); anchorax_qd (3); anchorax_g_out (4);
//           anchorax_out (5, what the kernel writes).

//! include lib/gate.wgsl
//! include lib/rng.wgsl
//! include lib/grid.wgsl

struct AnchoraxSizes { rows: u32, features: u32, count: u32, accumulate: u32 }

@group(0) @binding(1) var<uniform> anchorax_sizes: AnchoraxSizes;
@group(0) @binding(2) var<storage, read> anchorax_u: array<f32>;
@group(0) @binding(3) var<storage, read> anchorax_qd: array<f32>;
@group(0) @binding(4) var<storage, read> anchorax_g_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> anchorax_out: array<f32>;

// Rows of the state (the batch) and its row size d.
fn rows() -> u32 { return anchorax_sizes.rows; }
fn features() -> u32 { return anchorax_sizes.features; }
// u[row, i], Qd[row, i] and, in adjoint functions, ȳ[row, i].
fn state(row: u32, i: u32) -> f32 { return anchorax_u[row * anchorax_sizes.features + i]; }
fn injected(row: u32, i: u32) -> f32 { return anchorax_qd[row * anchorax_sizes.features + i]; }
fn grad_output(row: u32, i: u32) -> f32 { return anchorax_g_out[row * anchorax_sizes.features + i]; }
// Training mode (false with `inference: true`, in jfb/gdeq/ift's recomputation, outside solves),
// and a uniform u32 / f32 in [0, 1) per (solve key, evaluation index, counter): the adjoint of an
// evaluation sees the same numbers as its forward.
fn training() -> bool { return gate_noise_on(); }
fn random_u32(counter: u32) -> u32 { return rng_u32(rng_stream_key(gate_key(), gate_eval_index()), counter); }
fn random_uniform(counter: u32) -> f32 { return f32(random_u32(counter) >> 8u) * (1.0 / 16777216.0); }
