// Broyden on a dense layer whose product is split over k: lib/broyden_measure.wgsl with the
// evaluation fx = f(x') combined from the partials broyden_split_step.wgsl left
// (lib/gemm_split_sum.wgsl, the combine's order) plus bias through the epilogue chain, per element
// where the measurement reads it (each row c of the dispatch combines its own elements again).
// Then broyden_decide.wgsl: an iteration is three dispatches.
// Bindings: lib/broyden_measure.wgsl's 0–5; bias [d]; epi_qd [m, d]; gemm_partial [splits, m, d].
// Dispatch: (groups, ncols + 1), as broyden_measure.wgsl.

//! include lib/reduce.wgsl
//! include lib/broyden_measure.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_split_sum.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(8) var<storage, read> gemm_partial: array<f32>;

fn broyden_fx(i: u32) -> f32 {
  return epilogue_forward(gemm_split_sum(0u, params.n, i) + bias[i % params.features], i, epi_key());
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) grid: vec3u, @builtin(local_invocation_index) lid: u32) {
  broyden_measure(group, grid, lid);
}
