// One dispatch of a Broyden iteration t ≥ 1 of a dense layer: its product f = epilogue(A·W + bias)
// (the tanh block: add(Qd) → tanh; lib/epilogue.wgsl's chain without dropout) evaluates one trial
// point, and its epilogue leaves what broyden_finalize.wgsl + broyden_measure.wgsl would leave
// were this trial the iteration's last. params.trial picks the prologue:
//   trial 0: A = x_{t+1} = x_t + update_t (s = 1), computed on the fly from the rank-one update
//     the decide kernel of iteration t − 1 started (lib/broyden_advance.wgsl: any workgroup may
//     compute any element); the epilogue also stores the workgroup's own elements of the advance
//     (U_col, Vᵀ_col, update_t, x_{t+1}). Without the line search this is the iteration's only
//     trial (two dispatches per iteration, then the decide kernel).
//   trial e ≥ 1 (the line search, lib/line_search.wgsl): every workgroup sums the φ partials of
//     trial e − 1 in the same fixed order and runs the search's decision on a private copy of the
//     header (the same outcome everywhere); workgroup 0 stores it in the other header buffer
//     (params.header_in_b names the one read). Once the search has finished (or the solve is
//     done) the kernel writes nothing more, so the accepted trial's outputs survive; otherwise
//     A = x_t + ls_eval_s·update_t.
// The epilogue stores, for the workgroup's own elements, g' = f − x_eval (the residual of the
// point evaluated) into the g_new slot and x' = x_t + s·update_t into the x_new slot, with s the
// step returned should the search end here (1, s1, or a halving step clamped to amin: then x' is
// not x_eval, the original's quirk; lib/line_search.wgsl line_search_accept_s), then every
// partial sum of broyden_measure.wgsl against the factors after the update, with Δx = s·update
// (row c < ncols: Δx·U_c, Vᵀ_c·Δg, Vᵀ_c·g'; row ncols: Σ g'², Σ (g' + x')²), one entry per
// workgroup in each row, and the same residual sums as this trial's φ partials (.x = Σ g'²;
// lib/broyden_state.wgsl phi_offset, row trial mod 2). The product is the library's few-row or
// register-tiled body, as the layer's own forward would use for this batch (src/layers/dense.ts
// fusedProduct), or where that forward splits k across workgroups the body that splits it inside
// each (FusedProduct.whole).
// Bindings: lib/broyden_dense_params.wgsl's 0–7 (ctrl rw: trial 0's workgroup 0 copies ctrl_b into
//           ctrl.h; a trial stores its header in ctrl.h or ctrl_b; ctrl_b rw; params; sums, state,
//           factors, aux rw, lib/broyden_state.wgsl; weight [n, n]); bias [n]; epi_qd [m, n];
//           weight4 (lib/gemm_weight4.wgsl).
// Entries: step_rows_main, dispatch (ceil(n / GEMM_COLS), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_rows4_main (the weight read as vec4, n a multiple of 4), dispatch
//          (ceil(n / (4·GEMM_COLS)), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_tiled_main, dispatch (ceil(n / (4·GEMM_SIDE)), ceil(m / (4·GEMM_SIDE))),
//          REDUCE_SIZE = GEMM_SIDE²;
//          step_slices_main (lib/gemm_slices.wgsl: k split inside the workgroup, for a layer whose
//          plan splits k across workgroups), dispatch (ceil(n / (4·GEMM_QUADS)), ceil(m / 4)),
//          REDUCE_SIZE = GEMM_QUADS·GEMM_SLICES.

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/broyden_dense_params.wgsl
//! include lib/line_search.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_rows_vec4.wgsl
//! include lib/gemm_weight4.wgsl
//! include lib/gemm_tiled.wgsl
//! include lib/gemm_slices.wgsl

override REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;

// The elements this thread stores (at most 4 × 4 with the tiled body): index, Δx, Δg, g', u, v.
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
var<workgroup> trial_steps: vec2<f32>;
// adv.col in a trial e ≥ 1: trial 0 stored the new column, the dots read it from the factors.
const NO_COLUMN: u32 = 0xffffffffu;

// The iteration before t (whose update trial 0 finishes).
fn previous() -> u32 { return 1u - params.cur; }

// x_t + s·update_t of element i (trial e ≥ 1: trial 0 stored the direction).
fn trial_point(i: u32, s: f32) -> f32 {
  return state[x_index(params.cur, params.stride, i)] + s * aux[update_index(i)];
}

fn gemm_a(row: u32, kk: u32) -> f32 {
  let i = row * params.k + kk;
  if (params.trial == 0u) { return advance_element(previous(), i).w; }
  return trial_point(i, eval_s);
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
    let e = advance_element(previous(), i);
    advance_store(previous(), i, e); // x_{t+1} into the x_new slot of iteration t
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

// Trial 0, before the product: the advance's scalars, and the columns the dots run over. True when done.
fn advance_trial_begin(flat: u32, lid: u32) -> bool {
  if (advance_begin(flat == 0u, lid, params.groups, params.rows, params.memory, params.stride)) { return true; }
  if (lid == 0u) { dense_columns = min(ctrl_b.nstep, params.memory); }
  step_s = ctrl_b.ls_s;
  eval_s = step_s;
  return false;
}

// Trial e ≥ 1, before the product: the decision on trial e − 1 (workgroups of `groups` in all),
// the header into the other buffer; true when this trial is idle (search finished, solve done).
fn search_trial_begin(flat: u32, groups: u32, lid: u32) -> bool {
  if (lid == 0u) {
    if (params.header_in_b != 0u) { trial_hdr = ctrl_b; } else { trial_hdr = ctrl.h; }
    trial_open = select(0u, 1u, line_search_open(trial_hdr));
  }
  if (workgroupUniformLoad(&trial_open) != 0u) {
    let phi_in = phi_offset(params.memory, params.rows, (params.trial - 1u) % 2u);
    var phi = vec4<f32>(0.0);
    for (var g = lid; g < groups; g += REDUCE_SIZE) { phi += sums[phi_in + g]; }
    let total = workgroup_sum(phi, lid);
    if (lid == 0u) { trial_hdr = line_search_decide(trial_hdr, total.x); }
  }
  if (lid == 0u) {
    if (flat == 0u) {
      if (params.header_in_b != 0u) { ctrl.h = trial_hdr; } else { ctrl_b = trial_hdr; }
    }
    dense_columns = min(trial_hdr.nstep, params.memory);
    trial_steps = vec2<f32>(line_search_accept_s(trial_hdr), trial_hdr.ls_eval_s);
    trial_open = select(0u, 1u, line_search_open(trial_hdr));
  }
  if (workgroupUniformLoad(&trial_open) == 0u) { return true; }
  step_s = trial_steps.x;
  eval_s = trial_steps.y;
  adv.col = NO_COLUMN;
  return false;
}

fn dense_begin(flat: u32, groups: u32, lid: u32) -> bool {
  if (params.trial == 0u) { return advance_trial_begin(flat, lid); }
  return search_trial_begin(flat, groups, lid);
}

// After the product: the dots against the factors after the update (trial 0: column adv.col is
// its own u, v), then the residual row and the trial's φ partials.
fn dense_end(flat: u32, lid: u32) {
  let ncols = workgroupUniformLoad(&dense_columns);
  let stride = params.stride;
  for (var c = 0u; c < ncols; c++) {
    var total = vec4<f32>(0.0);
    for (var k = 0u; k < own_count; k++) {
      let i = own_index[k];
      var u = factors[u_index(stride, c, i)];
      var vt = factors[vt_index(params.memory, stride, c, i)];
      if (c == adv.col) { u = own_u[k]; vt = own_v[k]; }
      total += vec4<f32>(own_dx[k] * u, vt * own_dg[k], vt * own_g[k], 0.0);
    }
    let sum = workgroup_sum(total, lid);
    if (lid == 0u) { sums[row_index(params.rows, c, flat)] = sum; }
  }
  let residual = workgroup_sum(residual_sums, lid);
  if (lid == 0u) {
    sums[row_index(params.rows, ncols, flat)] = residual;
    sums[phi_offset(params.memory, params.rows, params.trial % 2u) + flat] = residual;
  }
}

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
