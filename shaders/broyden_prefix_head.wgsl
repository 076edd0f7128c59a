// The first dispatch of a Broyden iteration t ≥ 1 of a layer whose kernels before its final
// product begin with a fused linear (FusedPrefix.head): that linear's product
// out = epilogue(x_{t+1}·W + bias) (lib/epilogue.wgsl's chain without dropout), whose left operand
// x_{t+1} = x_t + update_t is computed on the fly from the rank-one update the decide kernel of
// iteration t − 1 started, as shaders/broyden_dense_step.wgsl's trial 0 computes it
// (lib/broyden_advance.wgsl: any workgroup may compute any element). The thread of output
// (row, c) also stores the advance (U_col, Vᵀ_col, update_t, x_{t+1}) of the state elements
// (row, c + j·n) for j ≥ 0, so each of the m·k elements once, where broyden_advance.wgsl would have
// stored it; workgroup 0 copies the decide kernel's header (ctrl_b) into ctrl.h, as that kernel
// does, for the layer's gate and for broyden_prefix_step.wgsl. So the advance kernel goes: an
// iteration of a layer of k kernels is k + 1 dispatches (this one, the layer's kernels after its
// first, broyden_prefix_step.wgsl, broyden_decide.wgsl).
// Bindings: lib/broyden_dense_params.wgsl's 0–7 (ctrl, ctrl_b rw; params with m, n, k the head's
//           product: k = the state's row size; sums, state, factors, aux; weight [k, n]);
//           bias [n] (8); epi_qd [m, n] (9); out [m, n] (10); weight4 (lib/gemm_weight4.wgsl).
// Entries: head_rows_main, head_rows4_main, head_row_main, head_tiled_main, head_slices_main, the
//          bodies and dispatches of shaders/broyden_dense_step.wgsl's step_<body>_main.

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/broyden_dense_params.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_rows_vec4.wgsl
//! include lib/gemm_row.wgsl
//! include lib/gemm_weight4.wgsl
//! include lib/gemm_tiled.wgsl
//! include lib/gemm_slices.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(10) var<storage, read_write> out: array<f32>;

// The iteration before t (whose update this kernel finishes).
fn previous() -> u32 { return 1u - params.cur; }

fn gemm_a(row: u32, kk: u32) -> f32 { return advance_element(previous(), row * params.k + kk).w; }
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let o = row * params.n + col;
  out[o] = epilogue_forward(acc + bias[col], o, epi_key());
  for (var e = col; e < params.k; e += params.n) {
    let i = row * params.k + e;
    advance_store(previous(), i, advance_element(previous(), i));
  }
}

// One entry per body, each calling only its own: an entry point pays, every dispatch, for the
// workgroup memory of every body it references (docs/swiftshader-costs.md).
@compute @workgroup_size(GEMM_COLS)
fn head_rows_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u && group.y == 0u, lid)) { return; }
  gemm_rows_block(group, lid);
}

@compute @workgroup_size(GEMM_COLS)
fn head_rows4_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u && group.y == 0u, lid)) { return; }
  gemm_rows4_block(group, lid);
}

@compute @workgroup_size(GEMM_ROW_THREADS)
fn head_row_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u && group.y == 0u, lid)) { return; }
  gemm_row_block(group, lid);
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn head_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u && group.y == 0u, lid)) { return; }
  gemm_tiled_block(group, lid);
}

@compute @workgroup_size(GEMM_SLICE_THREADS)
fn head_slices_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u && group.y == 0u, lid)) { return; }
  gemm_slices_block(group, lid);
}
