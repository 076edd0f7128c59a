// The end of a Broyden iteration's rank-one update and the next step, per element: the body of
// shaders/broyden_advance.wgsl, and the prologue of shaders/broyden_dense_step.wgsl (which
// computes the next trial point on the fly as its product's left operand). With the decide
// kernel's rank-one sums (denominator vᵀΔg + 1e-9 and v·g') and coefficients d_j:
//   u = w / (vᵀΔg + 1e-9);  NaN/±Inf in u and v become 0   (the new column: U_col, Vᵀ_col)
//   update_i = −(B_new·g')_i = g'_i − u_i (v·g') − Σ_{j ≠ col} U_j[i] d_j
//   x''_i = x'_i + ls_eval_s · update_i   (the next trial point)
// col = step mod L for the step just counted. It reads only columns j ≠ col of U, which no
// kernel writes meanwhile, so any workgroup may compute any element.
// The includer declares ctrl (Control, rw), ctrl_b (ControlHeader), sums, state, factors, aux
// (lib/broyden_state.wgsl), REDUCE_SIZE and `params` with rows, memory, stride (lib/broyden_state.wgsl),
// rank_parts (the entries of the decide kernel's rank-one row) and thread_sums (1: one entry per
// thread, lib/row_sums.wgsl).

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl
//! include lib/row_sums.wgsl

struct AdvanceScalars { denom: f32, v_gnew: f32, s: f32, col: u32, n_new: u32, coefs: u32, memory: u32, stride: u32 }

var<private> adv: AdvanceScalars;

// lib/row_sums.wgsl's rows: Broyden's sums.
fn row_entry(index: u32) -> vec4<f32> { return sums[index]; }
// Thread 0's reading of the header (done) and, where one thread adds the row, the rank-one sums.
struct AdvanceShared { done: u32, sums: vec4<f32> }
var<workgroup> advance_shared: AdvanceShared;

// Every thread: loads the header the decide kernel left (workgroup 0 copies it back into ctrl.h);
// returns true when the solve is done, else sums the rank-one partials (params.rank_parts at
// rank_offset; lib/row_sums.wgsl: thread 0 alone, before the one barrier, or the tree) into `adv`.
fn advance_begin(first: bool, lid: u32) -> bool {
  let memory = params.memory;
  let rank = rank_offset(memory, params.rows);
  let by_one = sums_by_one(params.rank_parts, params.thread_sums != 0u);
  if (lid == 0u) {
    let h = ctrl_b;
    if (first) { ctrl.h = h; }
    var total = vec4<f32>(0.0);
    if (h.done == 0u && by_one) { total = sums_serial(rank, params.rank_parts); }
    advance_shared = AdvanceShared(h.done, total);
  }
  let begun = workgroupUniformLoad(&advance_shared);
  if (begun.done != 0u) { return true; }
  var scalars = begun.sums;
  if (!by_one) { scalars = sums_tree(rank, params.rank_parts, lid); }
  let step = ctrl_b.nstep - 1u; // the decide kernel has counted this iteration
  adv = AdvanceScalars(scalars.x + 1e-9, scalars.y, ctrl_b.ls_eval_s, step % memory, min(step + 1u, memory),
                       coef_offset(memory, params.rows), memory, params.stride);
  return false;
}

// (u_i, v_i, update_i, x''_i) of element i for the iteration of parity `cur` (after advance_begin).
fn advance_element(cur: u32, i: u32) -> vec4<f32> {
  let stride = adv.stride;
  let u = finite_or_zero(aux[w_index(stride, i)] / adv.denom);
  var next = state[g_new_index(cur, stride, i)] - u * adv.v_gnew;
  for (var j = 0u; j < adv.n_new; j++) {
    if (j != adv.col) { next -= factors[u_index(stride, j, i)] * sums[adv.coefs + j].z; }
  }
  let v = finite_or_zero(aux[v_index(stride, i)]);
  return vec4<f32>(u, v, next, state[x_new_index(cur, stride, i)] + adv.s * next);
}

// Stores element i's share: the new factor column, the direction, the trial point.
fn advance_store(cur: u32, i: u32, e: vec4<f32>) {
  factors[u_index(adv.stride, adv.col, i)] = e.x;
  factors[vt_index(adv.memory, adv.stride, adv.col, i)] = e.y;
  aux[update_index(i)] = e.z;
  state[x_index(cur, adv.stride, i)] = e.w;
}
