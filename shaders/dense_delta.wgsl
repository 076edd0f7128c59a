// Dense layer adjoint, first step, fused: recomputes v = x·weight + bias and walks the epilogue
// chain back (lib/epilogue.wgsl) from the cotangent g_out of the chain's output:
//   delta = ∂v (what ∂weight = xᵀ·delta, ∂bias = Σ_rows delta and ∂x = delta·weightᵀ take),
//   dqd   = ∂Qd at the chain's add(Qd), written (params.qd_mode = 1) or added (2); 0: not written.
// With the same gate words as the forward, a dropout op applies the forward's mask.
// Entries gemm_rows_main, gemm_tiled_main (src/layers/dense.ts picks one).
// Bindings: gate; params; x [m, k]; weight [k, n]; bias [n]; epi_qd, g_out, delta, dqd [m, n].
//! include lib/gate.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_dropout.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_tiled.wgsl

struct DeltaParams {
  m: u32, n: u32, k: u32, qd_mode: u32,
  drop_threshold: u32, drop_scale: f32, drop_per_solve: u32, drop_salt: u32,
}

@group(0) @binding(1) var<uniform> params: DeltaParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(6) var<storage, read> g_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> delta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dqd: array<f32>;

fn gemm_a(row: u32, kk: u32) -> f32 { return x[row * params.k + kk]; }
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  let back = epilogue_adjoint(acc + bias[col], g_out[i], i, epi_key());
  delta[i] = back.x;
  if (params.qd_mode == 1u) { dqd[i] = back.y; }
  if (params.qd_mode == 2u) { dqd[i] += back.y; }
}
