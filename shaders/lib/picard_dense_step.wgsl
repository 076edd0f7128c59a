// The Picard dense step's kernel (shaders/picard_dense_step.wgsl, picard_prefix_step.wgsl): one
// Picard iteration of a dense layer in one dispatch, the product with the iteration's bookkeeping
// around it — the prologue ends iteration t − 1 (lib/step.wgsl: sums the partials the previous
// dispatch left, measures, keeps the best, decides; the same rules as finish.wgsl), the epilogue
// stores u_{t+1} = epilogue(A · weight + bias) (lib/epilogue.wgsl's chain without dropout) and this
// workgroup's residual partial sums of (u_t, u_{t+1}). The product is the library's few-row or
// register-tiled body, as the layer's own forward would use for this batch (src/layers/dense.ts
// fusedProduct). The includer supplies the product's left operand A [m, k]:
//   fn gemm_a(row: u32, kk: u32) -> f32
// Bindings: lib/step.wgsl's 0–7 (lib/step_operands.wgsl: step_candidate = u_t, step_previous =
//           u_{t-1}); weight [k, n]; bias [n]; epi_qd [m, n]; next = u_{t+1} [m, n]; weight4
//           (lib/gemm_weight4.wgsl).
// Entries: step_rows_main, dispatch (ceil(n / GEMM_COLS), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_rows4_main (the weight read as vec4, n a multiple of 4), dispatch
//          (ceil(n / (4·GEMM_COLS)), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_row_main (lib/gemm_row.wgsl: one row, vec4), dispatch
//          (ceil(n / (16·GEMM_ROW_THREADS)), m), REDUCE_SIZE = GEMM_ROW_THREADS;
//          step_tiled_main, dispatch (ceil(n / (4·GEMM_SIDE)), ceil(m / (4·GEMM_SIDE))),
//          REDUCE_SIZE = GEMM_SIDE².

//! include lib/reduce.wgsl
//! include lib/step.wgsl
//! include lib/step_operands.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_rows_vec4.wgsl
//! include lib/gemm_row.wgsl
//! include lib/gemm_weight4.wgsl
//! include lib/gemm_tiled.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> weight: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(11) var<storage, read_write> next: array<f32>;

var<private> step_sums: vec4<f32>;

fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  let value = epilogue_forward(acc + bias[col], i, epi_key());
  next[i] = value;
  step_sums += residual_sums(step_candidate[i], value);
}

// One entry per body, each calling only its own: an entry point pays, every dispatch, for the
// workgroup memory of every body it references (docs/swiftshader-costs.md).
@compute @workgroup_size(GEMM_COLS)
fn step_rows_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (step_begin(flat, count.x * count.y, lid)) { return; }
  gemm_rows_block(group, lid);
  step_end(flat, lid, step_sums);
}

@compute @workgroup_size(GEMM_COLS)
fn step_rows4_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (step_begin(flat, count.x * count.y, lid)) { return; }
  gemm_rows4_block(group, lid);
  step_end(flat, lid, step_sums);
}

@compute @workgroup_size(GEMM_ROW_THREADS)
fn step_row_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (step_begin(flat, count.x * count.y, lid)) { return; }
  gemm_row_block(group, lid);
  step_end(flat, lid, step_sums);
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn step_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (step_begin(flat, count.x * count.y, lid)) { return; }
  gemm_tiled_block(group, lid);
  step_end(flat, lid, step_sums);
}
