// Per-sample convergence (options.convergence = 'per-sample'): the measurement of one evaluation
// y = f(x), one workgroup per row of the [batch, d] state. Each row has its own control header
// (rows[r], a ControlHeader) and runs the batch mode's end-of-iteration rules on it
// (lib/finish_step.wgsl, on its own d values), then commits its own best-so-far. A row that has
// stopped returns at once: it is frozen. rows_finish.wgsl then gathers the rows into ctrl.
// The row's residual sums run over its d elements in a fixed order (thread j takes columns
// j, j + 64, …, then lib/reduce.wgsl's tree), which does not depend on the batch.
// Phases (params.phase):
//   0 Picard: finish mode params.mode on (x, y) = (u_t, u_{t+1}); best <- (y, x).
//   1 Anderson's start: MODE_ANDERSON_FIRST on (x_0, fx_0); best <- (fx_0, x_0); G[0][0] = Σr²;
//     x slot 1 <- fx_0 (u_1).
//   2 Anderson: the Gram row of the newest slot p = ring_entry(nstep).x only (no measurement):
//     dots[r][j] = res_p · res_j for j < len (res = fx − x), which rows_mix.wgsl reads.
//   3 Anderson's iteration: MODE_ANDERSON on (x_q, fx_q) of ring_entry(nstep); best <- (x_q, x_p),
//     x_0 after a restart; then, if the row goes on, phase 2's dots for the next entry.
// Bindings: ctrl (Control, read_write: lib/finish_step.wgsl's trace; rows write no trace, trace_cap
//           is 0); params; rows [batch] ControlHeader; x, y: the iterates (Picard: two buffers,
//           Anderson: x_ring and fx_ring, slots of `stride`); best_u, best_prev [batch × d];
//           ring (lib/anderson_ring.wgsl; Picard: any table); gram: [batch × slots²] Gram matrices,
//           then [batch × MAX_SLOTS] dots; going_rows (lib/rows_active.wgsl).
// Dispatch: indirect, going_rows.groups (one workgroup per row still going) of 64 threads.

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/residual_sums.wgsl
//! include lib/finish_step.wgsl
//! include lib/rows_params.wgsl
//! include lib/anderson_ring.wgsl
//! include lib/rows_active.wgsl

const REDUCE_SIZE: u32 = 64u;


@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: RowsParams;
@group(0) @binding(2) var<storage, read_write> rows: array<ControlHeader>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(6) var<storage, read_write> best_prev: array<f32>;
@group(0) @binding(7) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(8) var<storage, read_write> gram: array<f32>;
@group(0) @binding(9) var<storage, read> going_rows: RowsActive;

const PHASE_PICARD: u32 = 0u;
const PHASE_ANDERSON_FIRST: u32 = 1u;
const PHASE_ANDERSON_DOTS: u32 = 2u;
const PHASE_ANDERSON: u32 = 3u;

var<workgroup> row_state: vec4<u32>; // (done, improved, nstep, 0) of the row, shared by its threads

// The row's (done, 0, nstep, 0) as the rows buffer holds it (done also once the solve is),
// uniform across the workgroup.
fn row_load(row: u32, lid: u32) -> vec4<u32> {
  if (lid == 0u) { row_state = vec4<u32>(rows[row].done | ctrl.h.done, 0u, rows[row].nstep, 0u); }
  return workgroupUniformLoad(&row_state);
}

// Σ over the row of residual_sums(x, y), x and y at element offsets xo and yo.
fn row_sums(xo: u32, yo: u32, lid: u32) -> vec4<f32> {
  var sums = vec4<f32>(0.0);
  for (var j = lid; j < params.d; j += REDUCE_SIZE) { sums += residual_sums(x[xo + j], y[yo + j]); }
  return workgroup_sum(sums, lid);
}

// The row's end of iteration (thread 0 runs the rules); returns (done, improved, nstep, 0) to every thread.
fn row_finish(row: u32, mode: u32, t: vec4<f32>, lid: u32) -> vec4<u32> {
  if (lid == 0u) {
    hdr = rows[row];
    finish_step(mode, t);
    rows[row] = hdr;
    row_state = vec4<u32>(hdr.done, hdr.improved, hdr.nstep, 0u);
  }
  return workgroupUniformLoad(&row_state);
}

// best <- (candidate, previous) for improved = 1, both <- previous for 2 (commit.wgsl's rule), per row.
fn row_commit(improved: u32, candidate: u32, candidate_in_y: bool, previous: u32, base: u32, lid: u32) {
  if (improved == 0u) { return; }
  for (var j = lid; j < params.d; j += REDUCE_SIZE) {
    let prev = x[previous + j];
    let cand = select(x[candidate + j], y[candidate + j], candidate_in_y);
    best_u[base + j] = select(cand, prev, improved == 2u);
    best_prev[base + j] = prev;
  }
}

// dots[row][j] = res_p · res_j for the slots j < len of ring_entry(nstep), p its newest slot.
fn row_dots(row: u32, nstep: u32, base: u32, lid: u32) {
  let entry = ring_entry(nstep);
  let p = entry.x;
  let len = entry.y;
  let s = params.stride;
  for (var j0 = 0u; j0 < len; j0 += 4u) {
    var sums = vec4<f32>(0.0);
    for (var i = lid; i < params.d; i += REDUCE_SIZE) {
      let rp = y[p * s + base + i] - x[p * s + base + i];
      for (var k = 0u; k < 4u; k++) {
        let j = min(j0 + k, len - 1u);
        sums[k] += rp * (y[j * s + base + i] - x[j * s + base + i]);
      }
    }
    let total = workgroup_sum(sums, lid);
    if (lid == 0u) {
      let dots = params.batch * params.slots * params.slots + row * MAX_SLOTS + j0;
      for (var k = 0u; k < 4u && j0 + k < len; k++) { gram[dots + k] = total[k]; }
    }
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  hdr_writer = false;
  let row = going_rows.rows[group.x];
  let loaded = row_load(row, lid);
  if (loaded.x != 0u) { return; }
  let base = row * params.d;
  let s = params.stride;
  // if/else rather than switch: the build's reflection (wgsl_reflect) does not see resources
  // used only inside switch cases.
  let phase = params.phase;
  if (phase == PHASE_PICARD) {
    let state = row_finish(row, params.mode, row_sums(base, base, lid), lid);
    row_commit(state.y, base, true, base, base, lid);
  } else if (phase == PHASE_ANDERSON_FIRST) {
    let t = row_sums(base, base, lid);
    let state = row_finish(row, MODE_ANDERSON_FIRST, t, lid);
    row_commit(state.y, base, true, base, base, lid);
    if (lid == 0u) { gram[row * params.slots * params.slots] = t.x; }
    for (var j = lid; j < params.d; j += REDUCE_SIZE) { x[s + base + j] = y[base + j]; }
  } else if (phase == PHASE_ANDERSON_DOTS) {
    row_dots(row, loaded.z, base, lid);
  } else { // PHASE_ANDERSON
    let entry = ring_entry(loaded.z);
    let q = entry.w * s + base;
    let state = row_finish(row, MODE_ANDERSON, row_sums(q, q, lid), lid);
    row_commit(state.y, q, false, select(entry.x, 0u, entry.z != 0u) * s + base, base, lid);
    if (state.x == 0u) { row_dots(row, state.z, base, lid); }
  }
}
