// One Picard iteration of a dense layer in one dispatch: u_{t+1} = epilogue(u_t · weight + bias)
// (the tanh block: add(Qd) → tanh), the product wrapped in the iteration's bookkeeping
// (lib/picard_dense_step.wgsl: entries, bindings, dispatch). So an iteration is one dispatch for
// any state size; for small states shaders/picard_fused.wgsl runs several per dispatch instead.
// The product's left operand is the iterate u_t itself (step_candidate); a layer with kernels
// before its product takes shaders/picard_prefix_step.wgsl.

//! include lib/reduce.wgsl
//! include lib/picard_dense_step.wgsl

fn gemm_a(row: u32, kk: u32) -> f32 { return step_candidate[row * params.k + kk]; }
