// The body of Broyden's dense step kernels (shaders/broyden_dense_step.wgsl, broyden_prefix_step.wgsl):
// one dispatch evaluates one trial point through the layer's final product
// f = epilogue(A·W + bias) (lib/epilogue.wgsl's chain without dropout) and its epilogue leaves
// what broyden_finalize.wgsl + broyden_measure.wgsl would leave were this trial the iteration's
// last; shaders/broyden_dense_step.wgsl's header gives the trials, the stores and the sums.
// The includer supplies trial 0 (the trials after it, the line search's, are this file's):
//   fn gemm_a(row: u32, kk: u32) -> f32            the product's left operand A [m, k]
//   fn trial0_begin(flat: u32, lid: u32) -> bool    before the product: true when the solve is
//     done; else sets dense_columns (the factor columns the dots run over), step_s and eval_s,
//     and adv.col (the column whose u, v trial0_element returns, or NO_COLUMN: from the factors)
//   fn trial0_element(i: u32) -> vec4<f32>          element i's (u, v, update_t, x_{t+1}),
//     having stored whatever of them the kernel owns
// Bindings: lib/broyden_dense_params.wgsl's 0–7; bias [n] (8); epi_qd [m, n] (9); weight4
//           (lib/gemm_weight4.wgsl).
// Entries: step_rows_main, step_rows4_main, step_row_main, step_tiled_main, step_slices_main
//          (dispatch and REDUCE_SIZE: shaders/broyden_dense_step.wgsl's header).

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/row_sums.wgsl
//! include lib/broyden_dense_params.wgsl
//! include lib/line_search.wgsl
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

// The elements this thread stores (at most 16: 4 × 4 with the tiled and rows4 bodies, 16 columns
// of one row with the row body): index, Δx, Δg, g', u, v.
const MAX_OWN: u32 = 16u;
var<private> own_count: u32;
var<private> own_index: array<u32, MAX_OWN>;
var<private> own_dx: array<f32, MAX_OWN>;
var<private> own_dg: array<f32, MAX_OWN>;
var<private> own_g: array<f32, MAX_OWN>;
var<private> own_u: array<f32, MAX_OWN>;
var<private> own_v: array<f32, MAX_OWN>;
var<private> residual_sums: vec4<f32>;
// The step of the point returned (Δx = step_s·update) and, in a trial e ≥ 1, of the point evaluated.
var<private> step_s: f32;
var<private> eval_s: f32;
var<workgroup> dense_columns: u32;
// Trial e ≥ 1: the header (thread 0's copy), whether the search goes on, and its steps for every thread.
var<private> trial_hdr: ControlHeader;
var<workgroup> trial_open: u32;
// After the decision: whether this trial evaluates (its own variable: no barrier need separate
// thread 0's store from the other threads' load of trial_open).
var<workgroup> trial_go: u32;
var<workgroup> trial_steps: vec2<f32>;
// adv.col in a trial e ≥ 1: trial 0 stored the new column, the dots read it from the factors.
const NO_COLUMN: u32 = 0xffffffffu;

// The iteration before t (whose update trial 0 finishes).
fn previous() -> u32 { return 1u - params.cur; }

// x_t + s·update_t of element i (trial e ≥ 1: trial 0 stored the direction).
fn trial_point(i: u32, s: f32) -> f32 {
  return state[x_index(params.cur, params.stride, i)] + s * aux[update_index(i)];
}

fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  let stride = params.stride;
  var x_eval: f32;
  var x_step: f32;
  var direction: f32;
  var u = 0.0;
  var v = 0.0;
  if (params.trial == 0u) {
    let e = trial0_element(i);
    x_eval = e.w;
    x_step = e.w;
    direction = e.z;
    u = e.x;
    v = e.y;
  } else {
    direction = aux[update_index(i)];
    x_eval = trial_point(i, eval_s);
    x_step = trial_point(i, step_s);
    state[x_new_index(params.cur, stride, i)] = x_step;
  }
  let g_new = epilogue_forward(acc + bias[col], i, epi_key()) - x_eval;
  state[g_new_index(params.cur, stride, i)] = g_new;
  let z = g_new + x_step;
  residual_sums += vec4<f32>(g_new * g_new, z * z, 0.0, 0.0);
  let k = own_count;
  own_index[k] = i;
  own_dx[k] = step_s * direction;
  own_dg[k] = g_new - state[g_index(params.cur, stride, i)];
  own_g[k] = g_new;
  own_u[k] = u;
  own_v[k] = v;
  own_count = k + 1u;
}

// Trial e ≥ 1, before the product: the decision on trial e − 1 (workgroups of `groups` in all),
// the header into the other buffer; true when this trial is idle (search finished, solve done).
fn search_trial_begin(flat: u32, groups: u32, lid: u32) -> bool {
  let serial = params.thread_sums != 0u;
  if (lid == 0u) {
    if (params.header_in_b != 0u) { trial_hdr = ctrl_b; } else { trial_hdr = ctrl.h; }
    trial_open = select(0u, 1u, line_search_open(trial_hdr));
  }
  if (workgroupUniformLoad(&trial_open) != 0u) {
    let total = sums_total_first(phi_offset(params.memory, params.rows, (params.trial - 1u) % 2u), row_parts(groups), serial, lid);
    if (lid == 0u) { trial_hdr = line_search_decide(trial_hdr, total.x); }
  }
  if (lid == 0u) {
    if (flat == 0u) {
      if (params.header_in_b != 0u) { ctrl.h = trial_hdr; } else { ctrl_b = trial_hdr; }
    }
    dense_columns = min(trial_hdr.nstep, params.memory);
    trial_steps = vec2<f32>(line_search_accept_s(trial_hdr), trial_hdr.ls_eval_s);
    trial_go = select(0u, 1u, line_search_open(trial_hdr));
  }
  if (workgroupUniformLoad(&trial_go) == 0u) { return true; }
  step_s = trial_steps.x;
  eval_s = trial_steps.y;
  adv.col = NO_COLUMN;
  return false;
}

fn dense_begin(flat: u32, groups: u32, lid: u32) -> bool {
  if (params.trial == 0u) { return trial0_begin(flat, lid); }
  return search_trial_begin(flat, groups, lid);
}

// Entries of a row of this kernel's partial sums for `groups` workgroups: one per workgroup, or
// with params.thread_sums one per thread.
fn row_parts(groups: u32) -> u32 {
  return select(groups, groups * REDUCE_SIZE, params.thread_sums != 0u);
}

// This thread's share of the dots against column c (trial 0: column adv.col is its own u, v).
fn column_partial(c: u32) -> vec4<f32> {
  let stride = params.stride;
  var total = vec4<f32>(0.0);
  for (var k = 0u; k < own_count; k++) {
    let i = own_index[k];
    var u = factors[u_index(stride, c, i)];
    var vt = factors[vt_index(params.memory, stride, c, i)];
    if (c == adv.col) { u = own_u[k]; vt = own_v[k]; }
    total += vec4<f32>(own_dx[k] * u, vt * own_dg[k], vt * own_g[k], 0.0);
  }
  return total;
}

// After the product: the dots against the factors after the update, then the residual row and
// the trial's φ partials: entry `flat` of each row after a tree, or with params.thread_sums entry
// flat·REDUCE_SIZE + lid, this thread's own sum, without a barrier (lib/row_sums.wgsl).
fn dense_end(flat: u32, lid: u32) {
  let ncols = workgroupUniformLoad(&dense_columns);
  let rows = params.rows;
  let phi = phi_offset(params.memory, rows, params.trial % 2u);
  if (params.thread_sums != 0u) {
    let entry = flat * REDUCE_SIZE + lid;
    for (var c = 0u; c < ncols; c++) { sums[row_index(rows, c, entry)] = column_partial(c); }
    sums[row_index(rows, ncols, entry)] = residual_sums;
    sums[phi + entry] = residual_sums;
    return;
  }
  for (var c = 0u; c < ncols; c++) {
    let sum = workgroup_sum(column_partial(c), lid);
    if (lid == 0u) { sums[row_index(rows, c, flat)] = sum; }
  }
  let residual = workgroup_sum(residual_sums, lid);
  if (lid == 0u) {
    sums[row_index(rows, ncols, flat)] = residual;
    sums[phi + flat] = residual;
  }
}

// One entry per body, each calling only its own: an entry point pays, every dispatch, for the
// workgroup memory of every body it references (docs/swiftshader-costs.md).
@compute @workgroup_size(GEMM_COLS)
fn step_rows_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, count.x * count.y, lid)) { return; }
  gemm_rows_block(group, lid);
  dense_end(flat, lid);
}

@compute @workgroup_size(GEMM_COLS)
fn step_rows4_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, count.x * count.y, lid)) { return; }
  gemm_rows4_block(group, lid);
  dense_end(flat, lid);
}

@compute @workgroup_size(GEMM_ROW_THREADS)
fn step_row_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, count.x * count.y, lid)) { return; }
  gemm_row_block(group, lid);
  dense_end(flat, lid);
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn step_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, count.x * count.y, lid)) { return; }
  gemm_tiled_block(group, lid);
  dense_end(flat, lid);
}

@compute @workgroup_size(GEMM_SLICE_THREADS)
fn step_slices_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, count.x * count.y, lid)) { return; }
  gemm_slices_block(group, lid);
  dense_end(flat, lid);
}
