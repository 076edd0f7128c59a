// Anderson on a layer whose f ends in a dense product, f(x) = epilogue(prefix(x) · weight + bias)
// (a sequential of several groups, the last a fused linear; FusedPicardPath.prefix): the layer's
// own kernels before the product have written prefix(x_p) [m, k] into `product_a`; this dispatch
// is the product with the measurement in its epilogue (lib/anderson_dense_step.wgsl: entries,
// bindings, dispatch; the residual still of x_p and fx_p). So an iteration of a layer of k kernels
// is k + 1 dispatches (anderson_step.wgsl, the layer).
// Bindings: lib/anderson_dense_step.wgsl's, and product_a [m, k] (binding 13).

//! include lib/reduce.wgsl
//! include lib/anderson_dense_step.wgsl

@group(0) @binding(13) var<storage, read> product_a: array<f32>;

fn gemm_a(row: u32, kk: u32) -> f32 { return product_a[row * params.k + kk]; }
