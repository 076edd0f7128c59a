// Dense layer adjoint, input gradient: dx = delta·weightᵀ (+ add when params.use_add = 1), with
// delta [rows, out], weight [in, out]; the library's (m, n, k) = (rows, in, out). `add` lets the
// IFT adjoint system λ ↦ J_fᵀ λ + ḡ use this product with ḡ as its epilogue.
// Entries gemm_rows_main, gemm_tiled_main (with GEMM_B_N_CONTIGUOUS = false: weightᵀ is read along
// weight's rows).
// Bindings: gate; params; delta; weight; add [rows, in]; dx [rows, in].
//! include lib/gate.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_tiled.wgsl

struct InputGradParams { m: u32, n: u32, k: u32, use_add: u32 }

@group(0) @binding(1) var<uniform> params: InputGradParams;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> add: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

fn gemm_a(row: u32, kk: u32) -> f32 { return delta[row * params.k + kk]; }
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[col * params.k + kk]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  var value = acc;
  if (params.use_add != 0u) { value += add[i]; }
  dx[i] = value;
}
