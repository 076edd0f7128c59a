// Dense layer adjoint, parameter gradients: ∂weight = xᵀ·delta and ∂bias = Σ_rows delta as one
// product (xᵀ with a row of ones appended when params.with_bias = 1: that row of the result is
// ∂bias), with x [rows, in], delta [rows, out]; the library's (m, n, k) = (in + with_bias, out,
// rows). Every value is summed by one thread over the rows in order: deterministic.
// Entries gemm_rows_main, gemm_tiled_main (with GEMM_A_K_CONTIGUOUS = false: xᵀ is read down x's
// columns).
// Bindings: gate; params; x; delta; dw [in, out]; db [out].
//! include lib/gate.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_tiled.wgsl

struct WeightGradParams { m: u32, n: u32, k: u32, in_features: u32 }

@group(0) @binding(1) var<uniform> params: WeightGradParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> db: array<f32>;

fn gemm_a(row: u32, kk: u32) -> f32 {
  if (row == params.in_features) { return 1.0; }
  return x[kk * params.in_features + row];
}
fn gemm_b(kk: u32, col: u32) -> f32 { return delta[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  if (row == params.in_features) { db[col] = acc; } else { dw[row * params.n + col] = acc; }
}
