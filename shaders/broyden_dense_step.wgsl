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
// The body is lib/broyden_dense_step.wgsl's; this file supplies trial 0 (the advance on the fly).
// Bindings: lib/broyden_dense_params.wgsl's 0–7 (ctrl rw: trial 0's workgroup 0 copies ctrl_b into
//           ctrl.h; a trial stores its header in ctrl.h or ctrl_b; ctrl_b rw; params; sums, state,
//           factors, aux rw, lib/broyden_state.wgsl; weight [n, n]); bias [n]; epi_qd [m, n];
//           weight4 (lib/gemm_weight4.wgsl).
// Entries: step_rows_main, dispatch (ceil(n / GEMM_COLS), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_rows4_main (the weight read as vec4, n a multiple of 4), dispatch
//          (ceil(n / (4·GEMM_COLS)), ceil(m / 4)), REDUCE_SIZE = GEMM_COLS;
//          step_row_main (lib/gemm_row.wgsl: one row, vec4), dispatch
//          (ceil(n / (16·GEMM_ROW_THREADS)), m), REDUCE_SIZE = GEMM_ROW_THREADS;
//          step_tiled_main, dispatch (ceil(n / (4·GEMM_SIDE)), ceil(m / (4·GEMM_SIDE))),
//          REDUCE_SIZE = GEMM_SIDE²;
//          step_slices_main (lib/gemm_slices.wgsl: k split inside the workgroup, for a layer whose
//          plan splits k across workgroups), dispatch (ceil(n / (4·GEMM_QUADS)), ceil(m / 4)),
//          REDUCE_SIZE = GEMM_QUADS·GEMM_SLICES.

//! include lib/reduce.wgsl
//! include lib/broyden_dense_step.wgsl

// Trial 0 (after the decide kernel of iteration t − 1): A = x_t + update_t, on the fly.
fn gemm_a(row: u32, kk: u32) -> f32 {
  let i = row * params.k + kk;
  if (params.trial == 0u) { return advance_element(previous(), i).w; }
  return trial_point(i, eval_s);
}

// Trial 0, before the product: the advance's scalars, and the columns the dots run over. True when done.
fn trial0_begin(flat: u32, lid: u32) -> bool {
  if (advance_begin(flat == 0u, lid)) { return true; }
  if (lid == 0u) { dense_columns = min(ctrl_b.nstep, params.memory); }
  step_s = ctrl_b.ls_s;
  eval_s = step_s;
  return false;
}

// The advance of element i, stored: the new factor column, update_t, x_{t+1} into the x_new slot of iteration t.
fn trial0_element(i: u32) -> vec4<f32> {
  let e = advance_element(previous(), i);
  advance_store(previous(), i, e);
  return e;
}
