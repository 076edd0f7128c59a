// One Anderson step on a dense layer whose product is split over k, in one dispatch: the step's
// prologue (lib/anderson_step.wgsl: ends the iteration before, G's new row, α, in every
// workgroup), then split-k's first pass of f(u') with the mix as its left operand: workgroup
// (x, y, z) mixes u' = (1 − β)·Σ α_j x_j + β·Σ α_j fx_j for its slice z of k and rows 4y..4y+3
// (lib/anderson_mix.wgsl's anderson_mixed, read from the ring, nothing written to it: the
// workgroups of the other column blocks read the same elements) and stores the slice's partial
// product in gemm_partial. Column block 0 also stores its slice of u' in `mixed`;
// anderson_split_measure.wgsl then moves it into the ring, combines the partials into f(u') and
// measures: an iteration is the two dispatches.
// Bindings: lib/step.wgsl's 0–3, 6, 7; lib/anderson_step.wgsl's 8–11; weight [n, n] (weight4,
//           lib/gemm_weight4.wgsl: the same as vec4, for step_split4_main); gemm_partial [splits, m, n]; mixed [m, n].
// Entries: step_split_main, step_split4_main; dispatch (ceil(n / GEMM_COLS), ceil(m / 4), splits)
//          (n / (4·GEMM_COLS) for the vec4 body), REDUCE_SIZE = GEMM_COLS.

//! include lib/reduce.wgsl
//! include lib/anderson_step.wgsl
//! include lib/split_step.wgsl
//! include lib/gemm_weight4.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(12) var<storage, read> weight: array<f32>;
@group(0) @binding(13) var<storage, read_write> gemm_partial: array<f32>;
@group(0) @binding(14) var<storage, read_write> mixed: array<f32>;

// This workgroup stores u' of its slice (column block 0).
var<private> split_store: bool;

fn gemm_a(row: u32, kk: u32) -> f32 {
  let i = row * params.k + kk;
  let value = anderson_mixed(i, anderson_entry);
  if (split_store) { mixed[i] = value; }
  return value;
}
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

// The library's unsplit and combine entries (compiled, never dispatched from here) store u'.
fn gemm_out(row: u32, col: u32, acc: f32) { mixed[row * params.n + col] = acc; }

// The prologue for workgroup (x, y, z); returns whether the solve is done.
fn split_begin(group: vec3u, count: vec3u, lid: u32) -> bool {
  let flat = (group.z * count.y + group.y) * count.x + group.x;
  if (anderson_step_begin(flat, count.x * count.y * count.z, lid)) { return true; }
  split_store = group.x == 0u;
  return false;
}

fn split_end(group: vec3u, count: vec3u, lid: u32) {}

fn split_base() -> u32 { return 0u; }
