// Dense layer forward, fused: y = epilogue(x·weight + bias), with x [m, k], weight [k, n]
// row-major, bias [n] and the epilogue chain of lib/epilogue.wgsl (the stages fused after the
// product: add(Qd), activations, dropout). `linear` alone is the empty chain; the tanh block is
// add(Qd) → tanh (→ dropout). The ways to compute the product, chosen per problem by
// src/layers/dense.ts: gemm_rows_main (few rows), gemm_split_main + gemm_combine_main (few rows
// on a GPU), each also with the weight read as vec4 (gemm_rows4_main, gemm_split4_main: n a
// multiple of 4), gemm_row_main (one row, vec4: a CPU adapter) and gemm_tiled_main (many rows).
// Bindings: gate; params; x; weight; bias; epi_qd [m, n]; y [m, n]; gemm_partial [splits, m, n];
// weight4 (lib/gemm_weight4.wgsl), the weight's buffer again, read 4 values at a time.
//! include lib/gate.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_dropout.wgsl
//! include lib/gemm_split_vec4.wgsl
//! include lib/gemm_row.wgsl
//! include lib/gemm_tiled.wgsl
//! include lib/gemm_weight4.wgsl

struct DenseParams {
  m: u32, n: u32, k: u32, chunk: u32, splits: u32,
  drop_threshold: u32, drop_scale: f32, drop_per_solve: u32, drop_salt: u32,
}

@group(0) @binding(1) var<uniform> params: DenseParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> gemm_partial: array<f32>;

fn gemm_a(row: u32, kk: u32) -> f32 { return x[row * params.k + kk]; }
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  y[i] = epilogue_forward(acc + bias[col], i, epi_key());
}
