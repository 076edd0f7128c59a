// One dispatch of a Broyden iteration t ≥ 1 of a layer whose f ends in a dense product,
// f(x) = epilogue(prefix(x) · weight + bias) (a sequential of several groups, the last a fused
// linear; FusedPicardPath.prefix), without the line search: broyden_advance.wgsl, or
// broyden_prefix_head.wgsl in place of the prefix's first kernel, has stored the advance of
// iteration t − 1 (U_col, Vᵀ_col, update_t, x_{t+1}) and the layer's kernels before the product
// have written prefix(x_{t+1}) [m, k] into `product_a`; this dispatch is the product with the
// measurement in its epilogue (lib/broyden_dense_step.wgsl's trial 0: g', x' and every partial sum
// of broyden_measure.wgsl), then broyden_decide.wgsl (and the advance kernel, without the head).
// So an iteration of a layer of k kernels is k + 1 dispatches with the head, else k + 2 (k + 3 as
// the layer, measure, decide, advance).
// Bindings: lib/broyden_dense_step.wgsl's, and product_a [m, k] (binding 13).
// Entries, dispatch: shaders/broyden_dense_step.wgsl's; params.trial is 0.

//! include lib/reduce.wgsl
//! include lib/broyden_dense_step.wgsl

@group(0) @binding(13) var<storage, read> product_a: array<f32>;

var<workgroup> prefix_done: u32;

fn gemm_a(row: u32, kk: u32) -> f32 { return product_a[row * params.k + kk]; }

// Before the product: done, or the columns the dots run over (the advance stored the new one:
// the dots read every column from the factors). The advance copied the header into ctrl.h.
fn trial0_begin(flat: u32, lid: u32) -> bool {
  if (lid == 0u) {
    prefix_done = ctrl_b.done;
    dense_columns = min(ctrl_b.nstep, params.memory);
  }
  if (workgroupUniformLoad(&prefix_done) != 0u) { return true; }
  step_s = ctrl_b.ls_s;
  eval_s = step_s;
  adv.col = NO_COLUMN;
  return false;
}

// Element i of the advance the advance kernel stored: (·, ·, update_t, x_{t+1}).
fn trial0_element(i: u32) -> vec4<f32> {
  return vec4<f32>(0.0, 0.0, aux[update_index(i)], state[x_new_index(params.cur, params.stride, i)]);
}
