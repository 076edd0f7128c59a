// One Picard iteration of a layer whose f ends in a dense product, f(u) =
// epilogue(prefix(u) · weight + bias) (a sequential of several groups, the last a fused linear;
// FusedPicardPath.prefix): the layer's own kernels before the product have written prefix(u_t)
// [m, k] into `product_a`; this dispatch is the product with the iteration's bookkeeping around it
// (lib/picard_dense_step.wgsl: entries, bindings, dispatch; the residual still of u_t and u_{t+1}).
// So an iteration of a layer of k kernels is k dispatches (the layer alone, no step kernel).
// Bindings: lib/picard_dense_step.wgsl's, and product_a [m, k] (binding 13).

//! include lib/reduce.wgsl
//! include lib/picard_dense_step.wgsl

@group(0) @binding(13) var<storage, read> product_a: array<f32>;

fn gemm_a(row: u32, kk: u32) -> f32 { return product_a[row * params.k + kk]; }
