// The uniform (its stage members named as lib/step.wgsl's: src/solvers/stage-tail.ts), bindings
// 0–6 and 9, and the measurement rows of Broyden's kernels around a library
// stage kernel: shaders/broyden_prefix_norm_head.wgsl (a norm first: it on the advance),
// shaders/broyden_norm_step.wgsl and broyden_conv_step.wgsl (a norm or a convolution last: it
// measuring). The includer declares its stage's operands at 7 and 8 (gamma and beta, or weight and
// bias) and its own buffer at 10, REDUCE_SIZE, and the shape function of its stage piece
// (lib/norm_groups.wgsl's norm_shape, lib/conv3x3.wgsl's conv_shape) from these members.
//
// The measurement (broyden_norm_step.wgsl, broyden_conv_step.wgsl): with the advance kernel's
// stores of iteration t − 1 (update_t, x_{t+1}, the new factor column) and g' stored by the kernel
// for its own elements, per factor column c < ncols the dots (Δx·U_c, Vᵀ_c·Δg, Vᵀ_c·g') over those
// elements (the advance stored the new column: all come from the factors), then the residual row
// (Σ g'², Σ (g' + x')²), one entry per workgroup (with params.thread_sums one per thread): the
// rows broyden_prefix_step.wgsl's product epilogue leaves, which broyden_decide.wgsl reads.

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl

struct BroydenStageParams {
  rank_parts: u32,  // entries of the decide kernel's rank-one row
  rows: u32,        // entries per row of sums
  stride: u32,
  cur: u32,         // parity of iteration t
  memory: u32,
  thread_sums: u32, // 1: the rows of partial sums hold one entry per thread (lib/row_sums.wgsl)
  n: u32,           // the state's values
  m: u32,           // a norm's rows, and its groups, channels, spatial, eps (0 for a convolution)
  norm_groups: u32,
  norm_channels: u32,
  norm_spatial: u32,
  norm_eps: f32,
  conv_height: u32, // a convolution's shape (0 for a norm)
  conv_width: u32,
  conv_in: u32,
  conv_out: u32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read_write> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: BroydenStageParams;
@group(0) @binding(3) var<storage, read_write> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;

// Thread 0's reading of the header the advance kernel (or a head) left: done, and the factor columns measured.
var<workgroup> stage_open: vec2<u32>;

// The measurement's start, for every thread: (done, ncols).
fn stage_measure_begin(lid: u32) -> vec2<u32> {
  if (lid == 0u) { stage_open = vec2<u32>(ctrl_b.done, min(ctrl_b.nstep, params.memory)); }
  return workgroupUniformLoad(&stage_open);
}

// Element e's g' = fx − x_{t+1}, stored; returns its residual terms (g'², (g' + x')², 0, 0).
fn stage_residual(e: u32, fx: f32) -> vec4<f32> {
  let x_new = state[x_new_index(params.cur, params.stride, e)];
  let g_new = fx - x_new;
  state[g_new_index(params.cur, params.stride, e)] = g_new;
  let z = g_new + x_new;
  return vec4<f32>(g_new * g_new, z * z, 0.0, 0.0);
}

// Element e's terms of the dots against factor column c, with step s (after stage_residual stored its g').
fn stage_column_term(e: u32, c: u32, s: f32) -> vec4<f32> {
  let stride = params.stride;
  let cur = params.cur;
  let g_new = state[g_new_index(cur, stride, e)];
  let vt = factors[vt_index(params.memory, stride, c, e)];
  let dg = g_new - state[g_index(cur, stride, e)];
  return vec4<f32>(s * aux[update_index(e)] * factors[u_index(stride, c, e)], vt * dg, vt * g_new, 0.0);
}

// Stores this thread's share `value` of row `row` for workgroup `flat` (all threads call it: with
// thread sums its own entry, else the workgroup's tree total); the residual row (row = ncols) also
// goes to the trials' φ row 0.
fn stage_store_row(flat: u32, lid: u32, row: u32, value: vec4<f32>, residual: bool) {
  let rows = params.rows;
  let phi = phi_offset(params.memory, rows, 0u);
  if (params.thread_sums != 0u) {
    let entry = flat * REDUCE_SIZE + lid;
    sums[row_index(rows, row, entry)] = value;
    if (residual) { sums[phi + entry] = value; }
    return;
  }
  let total = workgroup_sum(value, lid);
  if (lid == 0u) {
    sums[row_index(rows, row, flat)] = total;
    if (residual) { sums[phi + flat] = total; }
  }
}
