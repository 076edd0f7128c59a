// One Picard iteration of a dense layer whose product is split over k (few rows on a GPU: the
// layer's forward is gemm_split_main then gemm_combine_main), in one dispatch: the combine moves
// into the next split product's prologue. Workgroup (x, y, z) handles slice z of k (input elements
// i in [z·chunk, (z+1)·chunk)) for rows 4y..4y+3; its input u_{t+1} on that slice is the
// combine of the partials u_t·weight the dispatch before left (lib/gemm_split.wgsl's
// gemm_split_sum: the slices in order, as gemm_combine_main sums them, so the iterates are
// bit-identical to the layer's own forward) plus bias through the epilogue chain, staged as the
// product's A; the product u_{t+1}·weight of its slice goes to this step's half of gemm_partial.
// The workgroups of column block x = 0 also store their slice of u_{t+1} (`next`) and the residual
// partial sums of (u_t, u_{t+1}); the prologue (lib/step.wgsl) ends iteration t − 1 as in
// shaders/picard_dense_step.wgsl. So the measurement trails the product by one dispatch as there.
// The first fused step needs u_1·weight's partials: prime_split_main (prime_split4_main) computes
// them from step_candidate = u_1 directly, once, after the separate first iteration.
// Bindings: lib/step.wgsl's 0–7 (lib/step_operands.wgsl: step_candidate = u_t, step_previous = u_{t-1});
//           weight [n, n] (weight4, lib/gemm_weight4.wgsl: the same, as vec4, for the *4 entries); bias [n]; epi_qd [m, n];
//           next = u_{t+1} [m, n]; gemm_partial [2 halves, splits, m, n].
// Entries: step_split_main, step_split4_main, prime_split_main, prime_split4_main; dispatch
//          (ceil(n / GEMM_COLS), ceil(m / 4), splits) (n / (4·GEMM_COLS) for the *4 entries),
//          REDUCE_SIZE = GEMM_COLS; residual partials: one per (y, z), at z·ceil(m / 4) + y.

//! include lib/reduce.wgsl
//! include lib/step.wgsl
//! include lib/step_operands.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/split_step.wgsl
//! include lib/gemm_weight4.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> weight: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(11) var<storage, read_write> next: array<f32>;
@group(0) @binding(12) var<storage, read_write> gemm_partial: array<f32>;

var<private> step_sums: vec4<f32>;
// The prime entries: A is step_candidate itself (no combine, nothing stored).
var<private> split_prime: bool;
// This workgroup stores its slice of u_{t+1} and measures it (column block 0).
var<private> split_store: bool;

// Element (row, kk) of u_{t+1}: the combine of the partials of u_t·weight, as gemm_combine_main's gemm_out.
fn split_iterate(row: u32, kk: u32) -> f32 {
  let i = row * params.n + kk;
  return epilogue_forward(gemm_split_sum(params.split_in, params.m * params.n, i) + bias[kk], i, epi_key());
}

fn gemm_a(row: u32, kk: u32) -> f32 {
  let i = row * params.k + kk;
  if (split_prime) { return step_candidate[i]; }
  let value = split_iterate(row, kk);
  if (split_store) {
    next[i] = value;
    step_sums += residual_sums(step_candidate[i], value);
  }
  return value;
}
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

// The library's unsplit and combine entries (compiled, never dispatched from here) store the iterate.
fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  next[i] = epilogue_forward(acc + bias[col], i, epi_key());
}

// The step's prologue: ends iteration t − 1; returns whether the solve is done.
fn split_begin(group: vec3u, count: vec3u, lid: u32) -> bool {
  let flat = (group.z * count.y + group.y) * count.x + group.x;
  if (step_begin(flat, count.x * count.y * count.z, lid)) { return true; }
  split_store = group.x == 0u;
  return false;
}

// The step's epilogue: column block 0 stores the residual partial sums of its slice.
fn split_end(group: vec3u, count: vec3u, lid: u32) {
  if (group.x == 0u) { step_end(group.z * count.y + group.y, lid, step_sums); }
}

fn split_base() -> u32 { return params.split_out; }

@compute @workgroup_size(GEMM_COLS)
fn prime_split_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  split_prime = true;
  gemm_split_block(group, lid, params.split_out);
}

@compute @workgroup_size(GEMM_COLS)
fn prime_split4_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  split_prime = true;
  gemm_split4_block(group, lid, params.split_out);
}
