// One Broyden iteration t ≥ 1 of a dense layer in one dispatch, before the decide kernel (so two
// dispatches per iteration): the product's left operand is the trial point
// x_{t+1} = x_t + update_t, computed on the fly from the rank-one update the decide kernel of
// iteration t − 1 started (lib/broyden_advance.wgsl: any workgroup may compute any element);
// the epilogue f = epilogue(acc + bias) (the tanh block: add(Qd) → tanh; lib/epilogue.wgsl's
// chain without dropout) stores the workgroup's own elements of the advance (U_col, Vᵀ_col,
// update_t, x_{t+1}) and of g_{t+1} = f − x_{t+1}, then every partial sum of
// shaders/broyden_measure.wgsl against the factors after that update (row c < ncols: Δx·U_c,
// Vᵀ_c·Δg, Vᵀ_c·g'; row ncols: the residual sums), one entry per workgroup in each row. The
// product is the library's few-row or register-tiled body, as the layer's own forward would use
// for this batch (src/layers/dense.ts fusedProduct).
// Bindings: ctrl (rw: workgroup 0 copies ctrl_b back into ctrl.h); ctrl_b (read); params; sums,
//           state, factors, aux (rw, lib/broyden_state.wgsl); weight [n, n]; bias [n]; epi_qd [m, n].
// Entries: step_rows_main, dispatch (ceil(n / GEMM_COLS), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_tiled_main, dispatch (ceil(n / (4·GEMM_SIDE)), ceil(m / (4·GEMM_SIDE))),
//          REDUCE_SIZE = GEMM_SIDE².

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_rows.wgsl
//! include lib/gemm_tiled.wgsl

override REDUCE_SIZE: u32 = 64u;

struct DenseStepParams {
  groups: u32,  // the decide kernel's workgroups (its rank-one sums)
  rows: u32,    // entries per row of sums
  stride: u32,
  cur: u32,     // parity of iteration t
  memory: u32,
  m: u32,       // the product C [m, n] = A [m, k] · B [k, n]
  n: u32,
  k: u32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: DenseStepParams;
@group(0) @binding(3) var<storage, read_write> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read> weight: array<f32>;
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
var<private> step_s: f32;
var<workgroup> dense_columns: u32;

// The iteration before t (whose update this kernel finishes).
fn previous() -> u32 { return 1u - params.cur; }

fn gemm_a(row: u32, kk: u32) -> f32 { return advance_element(previous(), row * params.k + kk).w; }
fn gemm_b(kk: u32, col: u32) -> f32 { return weight[kk * params.n + col]; }

fn gemm_out(row: u32, col: u32, acc: f32) {
  let i = row * params.n + col;
  let e = advance_element(previous(), i);
  advance_store(previous(), i, e);
  let g_new = epilogue_forward(acc + bias[col], i, epi_key()) - e.w;
  let stride = params.stride;
  state[g_new_index(params.cur, stride, i)] = g_new;
  let z = g_new + e.w;
  residual_sums += vec4<f32>(g_new * g_new, z * z, 0.0, 0.0);
  let k = own_count;
  own_index[k] = i;
  own_dx[k] = step_s * e.z;
  own_dg[k] = g_new - state[g_index(params.cur, stride, i)];
  own_g[k] = g_new;
  own_u[k] = e.x;
  own_v[k] = e.y;
  own_count = k + 1u;
}

// Before the product: the advance's scalars, and the columns the dots run over. True when done.
fn dense_begin(flat: u32, lid: u32) -> bool {
  if (advance_begin(flat == 0u, lid, params.groups, params.rows, params.memory, params.stride)) { return true; }
  if (lid == 0u) { dense_columns = min(ctrl_b.nstep, params.memory); }
  step_s = ctrl_b.ls_s;
  return false;
}

// After the product: the dots against the factors after the update (column adv.col is u, v), then the residual row.
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
  if (lid == 0u) { sums[row_index(params.rows, ncols, flat)] = residual; }
}

@compute @workgroup_size(GEMM_COLS)
fn step_rows_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, lid)) { return; }
  gemm_rows_block(group, lid);
  dense_end(flat, lid);
}

@compute @workgroup_size(GEMM_SIDE, GEMM_SIDE)
fn step_tiled_main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group.y * count.x + group.x;
  if (dense_begin(flat, lid)) { return; }
  gemm_tiled_block(group, lid);
  dense_end(flat, lid);
}
