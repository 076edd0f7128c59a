// One dispatch of a Broyden iteration t ≥ 1 of a dense layer whose product is split over k,
// without the line search: the advance of iteration t − 1 as split-k's first pass's left operand.
// Every workgroup sums the decide kernel's rank-one partials (lib/broyden_advance.wgsl
// advance_begin; workgroup 0 copies the header back into ctrl.h) and computes
// x_{t+1} = x_t + update_t on the fly for its slice z of k and rows 4y..4y+3 (any workgroup may
// compute any element); column block x = 0 also stores those elements' share of the advance
// (U_col, Vᵀ_col, update_t, x_{t+1}). The slice's partial product goes to gemm_partial;
// broyden_split_measure.wgsl combines and measures, then broyden_decide.wgsl: three dispatches
// per iteration (the product's slices, the measurement's dots and the decide's rank-one sums are
// three grid-wide sums in a row, each needing a dispatch boundary).
// Bindings: lib/broyden_dense_params.wgsl's 0–7 (params.trial = 0); gemm_partial [splits, m, d];
//           weight4 (lib/gemm_weight4.wgsl: the weight again, as vec4, for step_split4_main).
// Entries: step_split_main, step_split4_main; dispatch (ceil(d / GEMM_COLS), ceil(m / 4), splits)
//          (d / (4·GEMM_COLS) for the vec4 body), REDUCE_SIZE = GEMM_COLS.

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/broyden_dense_params.wgsl
//! include lib/split_step.wgsl
//! include lib/gemm_weight4.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read_write> gemm_partial: array<f32>;

// This workgroup stores the advance of its slice (column block 0).
var<private> split_store: bool;

fn gemm_a(row: u32, kk: u32) -> f32 {
  let i = row * params.k + kk;
  let e = advance_element(1u - params.cur, i);
  if (split_store) { advance_store(1u - params.cur, i, e); }
  return e.w;
}
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

// The library's unsplit and combine entries (compiled, never dispatched from here) store the product.
fn gemm_out(row: u32, col: u32, acc: f32) { gemm_partial[row * params.n + col] = acc; }

// The prologue for workgroup (x, y, z); returns whether the solve is done.
fn split_begin(group: vec3u, count: vec3u, lid: u32) -> bool {
  let flat = (group.z * count.y + group.y) * count.x + group.x;
  if (advance_begin(flat == 0u, lid)) { return true; }
  split_store = group.x == 0u;
  return false;
}

fn split_end(group: vec3u, count: vec3u, lid: u32) {}

fn split_base() -> u32 { return 0u; }
