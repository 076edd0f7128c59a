// Per-sample convergence, Broyden (options.convergence = 'per-sample', without line search): one
// row's whole iteration after its evaluation, one workgroup per row. Row r keeps its own factors
// (its d entries of every column of U and Vᵀ, whose dots run over the row alone), so
// B_r = −I + U_r V_rᵀ. The same steps as the batch kernels (broyden_finalize, _dots, _coef,
// _rank_one, _update), on the row's elements and in the same order of sums:
//   g' = fx − x'; the row's measurement and best-so-far (lib/finish_step.wgsl on rows[r]);
//   then, if the row goes on, with Δx = update (step 1), Δg = g' − g and the n_old valid columns:
//   a_j = Δx·U_j, c_j = Vᵀ_j·Δg, d_j = Vᵀ_j·g';  v = −Δx + Σ a_j Vᵀ_j,  w = Δx + Δg − Σ U_j c_j;
//   u = w / (v·Δg + 1e-9) (NaN/±Inf → 0) into column col = step mod L, Vᵀ_col = v (NaN/±Inf → 0);
//   update = g' − u (v·g') − Σ_{j ≠ col} U_j d_j;  and the next trial point x' + update.
// Phase 0 (the start): g0 = fx − x0, MODE_BROYDEN_FIRST, update = g0, trial point x0 + g0.
// Bindings: ctrl (read_write: lib/finish_step.wgsl; trace_cap is 0); params; rows [batch]
//           ControlHeader; state: x_a, x_b, g_a, g_b, update, v, w (7 slots of `stride`, see
//           lib/broyden_state.wgsl); factors: U (L slots), Vᵀ (L slots), then [batch × L] vec4 of
//           the rows' dots; fx [n]; best_u, best_prev [n]; going_rows (lib/rows_active.wgsl).
// Dispatch: indirect, going_rows.groups (one workgroup per row still going) of 64 threads.

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/finish_step.wgsl
//! include lib/rows_params.wgsl
//! include lib/broyden_state.wgsl
//! include lib/rows_active.wgsl

const REDUCE_SIZE: u32 = 64u;


@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: RowsParams;
@group(0) @binding(2) var<storage, read_write> rows: array<ControlHeader>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> factors: array<f32>;
@group(0) @binding(5) var<storage, read> fx: array<f32>;
@group(0) @binding(6) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(7) var<storage, read_write> best_prev: array<f32>;
@group(0) @binding(8) var<storage, read> going_rows: RowsActive;

var<workgroup> row_state: vec4<u32>; // (done, improved, nstep, 0)

fn row_update_index(i: u32) -> u32 { return 4u * params.stride + i; }
fn row_v_index(i: u32) -> u32 { return 5u * params.stride + i; }
fn row_w_index(i: u32) -> u32 { return 6u * params.stride + i; }
// The row's dots of column j (a_j, c_j, d_j, 0), after the factors.
fn dots_index(row: u32, j: u32) -> u32 { return 2u * params.memory * params.stride + 4u * (row * params.memory + j); }

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  hdr_writer = false;
  let row = going_rows.rows[group.x];
  if (lid == 0u) { row_state = vec4<u32>(rows[row].done | ctrl.h.done, 0u, 0u, 0u); }
  if (workgroupUniformLoad(&row_state).x != 0u) { return; }
  let base = row * params.d;
  let end = base + params.d;
  let stride = params.stride;
  let first = params.first != 0u;
  // The start: x0 in slot 0 and g0 into slot 2 (cur = 1 for the slots' names, as broyden.ts).
  let cur = select(params.cur, 1u, first);

  // g' = fx − x' (x' the point evaluated) and the row's residual sums.
  var sums = vec4<f32>(0.0);
  for (var i = base + lid; i < end; i += REDUCE_SIZE) {
    let accepted = state[x_new_index(cur, stride, i)];
    let g = fx[i] - accepted;
    state[g_new_index(cur, stride, i)] = g;
    let z = g + accepted;
    sums += vec4<f32>(g * g, z * z, 0.0, 0.0);
  }
  let t = workgroup_sum(sums, lid);
  if (lid == 0u) {
    hdr = rows[row];
    finish_step(select(MODE_BROYDEN, MODE_BROYDEN_FIRST, first), t);
    rows[row] = hdr;
    row_state = vec4<u32>(hdr.done, hdr.improved, hdr.nstep, 0u);
  }
  let outcome = workgroupUniformLoad(&row_state);
  // best <- (x', x), or both <- x0 at the start (commit.wgsl's rule).
  if (outcome.y != 0u) {
    for (var i = base + lid; i < end; i += REDUCE_SIZE) {
      let prev = select(state[x_index(cur, stride, i)], state[x_new_index(cur, stride, i)], first);
      best_u[i] = select(state[x_new_index(cur, stride, i)], prev, outcome.y == 2u);
      best_prev[i] = prev;
    }
  }
  if (first) {
    // update = g0 and the first trial point x0 + 1·g0 (slot 1).
    for (var i = base + lid; i < end; i += REDUCE_SIZE) {
      let g = state[g_new_index(cur, stride, i)];
      state[row_update_index(i)] = g;
      state[x_index(cur, stride, i)] = state[x_new_index(cur, stride, i)] + 1.0 * g;
    }
    return;
  }
  if (outcome.x != 0u) { return; }

  let step = outcome.z - 1u; // finish_step has counted this iteration
  let memory = params.memory;
  let n_old = min(step, memory);
  let col = step % memory;
  let n_new = min(step + 1u, memory);
  // The dots against the factors before the update, one column at a time.
  for (var j = 0u; j < n_old; j++) {
    var dots = vec4<f32>(0.0);
    for (var i = base + lid; i < end; i += REDUCE_SIZE) {
      let dx = 1.0 * state[row_update_index(i)];
      let g_new = state[g_new_index(cur, stride, i)];
      let dg = g_new - state[g_index(cur, stride, i)];
      let vt = factors[vt_index(memory, stride, j, i)];
      dots += vec4<f32>(dx * factors[u_index(stride, j, i)], vt * dg, vt * g_new, 0.0);
    }
    let total = workgroup_sum(dots, lid);
    if (lid == 0u) {
      let at = dots_index(row, j);
      factors[at] = total.x;
      factors[at + 1u] = total.y;
      factors[at + 2u] = total.z;
    }
  }
  storageBarrier();
  // v and w, and (v·Δg, v·g').
  var vsums = vec4<f32>(0.0);
  for (var i = base + lid; i < end; i += REDUCE_SIZE) {
    let dx = 1.0 * state[row_update_index(i)];
    let g_new = state[g_new_index(cur, stride, i)];
    let dg = g_new - state[g_index(cur, stride, i)];
    var v = -dx;
    var w = dx + dg;
    for (var j = 0u; j < n_old; j++) {
      let at = dots_index(row, j);
      v += factors[at] * factors[vt_index(memory, stride, j, i)];
      w -= factors[u_index(stride, j, i)] * factors[at + 1u];
    }
    state[row_v_index(i)] = v;
    state[row_w_index(i)] = w;
    vsums += vec4<f32>(v * dg, v * g_new, 0.0, 0.0);
  }
  let scalars = workgroup_sum(vsums, lid);
  let denom = scalars.x + 1e-9;
  let v_gnew = scalars.y;
  // The new column, the next direction and the next trial point x' + 1·update (into slot cur).
  for (var i = base + lid; i < end; i += REDUCE_SIZE) {
    let u = finite_or_zero(state[row_w_index(i)] / denom);
    let g_new = state[g_new_index(cur, stride, i)];
    var next = g_new - u * v_gnew;
    for (var j = 0u; j < n_new; j++) {
      if (j != col) { next -= factors[u_index(stride, j, i)] * factors[dots_index(row, j) + 2u]; }
    }
    factors[u_index(stride, col, i)] = u;
    factors[vt_index(memory, stride, col, i)] = finite_or_zero(state[row_v_index(i)]);
    state[row_update_index(i)] = next;
    state[x_index(cur, stride, i)] = state[x_new_index(cur, stride, i)] + 1.0 * next;
  }
}
