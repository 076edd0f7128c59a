// Anderson on a dense layer: the evaluation of the mixed point x_p and its measurement in one
// dispatch (lib/anderson_dense_step.wgsl: entries, bindings, dispatch). With anderson_step.wgsl
// before it, an iteration is two dispatches. The product's left operand is x_p itself (its ring
// slot); a layer with kernels before its product takes shaders/anderson_prefix_step.wgsl.

//! include lib/reduce.wgsl
//! include lib/anderson_dense_step.wgsl

fn gemm_a(row: u32, kk: u32) -> f32 { return x_ring[measure_base() + row * params.k + kk]; }
