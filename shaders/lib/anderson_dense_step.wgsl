// Anderson's dense measurement kernel (shaders/anderson_dense_step.wgsl, anderson_prefix_step.wgsl):
// the iteration's evaluation fx_p = epilogue(A · weight + bias) and its measurement
// (lib/anderson_measure.wgsl: residual sums and the new Gram row as partials) in one dispatch — the
// product's epilogue measures each value as it is stored. The product is the library's few-row or
// register-tiled body, as the layer's own forward would use for this batch (src/layers/dense.ts
// fusedProduct); the epilogue chain is lib/epilogue.wgsl's, without dropout. The includer
// supplies the product's left operand A [m, k]:
//   fn gemm_a(row: u32, kk: u32) -> f32
// Bindings: lib/anderson_measure.wgsl's 0–6; weight [k, n]; bias [n]; epi_qd [m, n]; weight4
// (lib/gemm_weight4.wgsl).
// Entries: measure_rows_main, dispatch (ceil(n / GEMM_COLS), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          measure_rows4_main (the weight read as vec4, n a multiple of 4), dispatch
//          (ceil(n / (4·GEMM_COLS)), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          measure_row_main (lib/gemm_row.wgsl: one row, vec4), dispatch
//          (ceil(n / (16·GEMM_ROW_THREADS)), m), REDUCE_SIZE = GEMM_ROW_THREADS;
//          measure_tiled_main, dispatch (ceil(n / (4·GEMM_SIDE)), ceil(m / (4·GEMM_SIDE))),
//          REDUCE_SIZE = GEMM_SIDE².

//! include lib/reduce.wgsl
//! include lib/anderson_measure.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_rows_vec4.wgsl
//! include lib/gemm_row.wgsl
//! include lib/gemm_weight4.wgsl
//! include lib/gemm_tiled.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> weight: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;

fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  let value = epilogue_forward(acc + bias[col], i, epi_key());
  let base = measure_base();
  fx_ring[base + i] = value;
  measure_element(i, x_ring[base + i], value);
}

// One entry per body, each calling only its own: an entry point pays, every dispatch, for the
// workgroup memory of every body it references (docs/swiftshader-costs.md).
@compute @workgroup_size(GEMM_COLS)
fn measure_rows_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  gemm_rows_block(group, lid);
  measure_store(group.y * count.x + group.x, count.x * count.y, lid);
}

@compute @workgroup_size(GEMM_COLS)
fn measure_rows4_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  gemm_rows4_block(group, lid);
  measure_store(group.y * count.x + group.x, count.x * count.y, lid);
}

@compute @workgroup_size(GEMM_ROW_THREADS)
fn measure_row_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  gemm_row_block(group, lid);
  measure_store(group.y * count.x + group.x, count.x * count.y, lid);
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn measure_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  gemm_tiled_block(group, lid);
  measure_store(group.y * count.x + group.x, count.x * count.y, lid);
}
