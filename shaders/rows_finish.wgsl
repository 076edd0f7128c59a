// Per-sample convergence (options.convergence = 'per-sample'): after each evaluation and its
// per-row measurement (rows_measure.wgsl), gathers the rows' headers into the solve's control
// header, where the layers' gate, the CPU's readback and the chunk schedule look: the solve is done
// (and evaluations are skipped) once every row is; nstep and tnstep are the largest over the rows,
// best_abs/best_rel the largest best residual of a row, converged iff every row converged,
// nonfinite/stalled if some row is. It advances the evaluation index past the evaluation before it
// (which ran only while the solve was going) and records the trace: per call, the largest
// (last_abs, last_rel) over the rows. And it lists the rows still going (active, lib/rows_active.wgsl):
// the per-row kernels run one workgroup per listed row (an indirect dispatch), so a frozen row
// costs them nothing, and none runs once the solve is done. One thread, rows in order.
// Bindings: ctrl (read_write); params {batch, trace_cap}; rows [batch] ControlHeader (read);
//           going_rows (read_write).
// Dispatch: (1).

//! include lib/control.wgsl
//! include lib/rows_active.wgsl

struct GatherParams { batch: u32, trace_cap: u32 }

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: GatherParams;
@group(0) @binding(2) var<storage, read> rows: array<ControlHeader>;
@group(0) @binding(3) var<storage, read_write> going_rows: RowsActive;

@compute @workgroup_size(1)
fn main() {
  if (ctrl.h.done != 0u) {
    going_rows.groups = vec3<u32>(0u, 1u, 1u);
    return;
  }
  var h = ctrl.h;
  var going = 0u;
  h.eval_index += 1u;
  var all_done = true;
  var all_converged = true;
  h.nonfinite = 0u;
  h.stalled = 0u;
  h.nstep = 0u;
  h.tnstep = 0u;
  var worst = vec4<f32>(0.0); // best_abs, best_rel, last_abs, last_rel
  for (var r = 0u; r < params.batch; r++) {
    let row = rows[r];
    if (row.done == 0u) {
      going_rows.rows[going] = r;
      going += 1u;
    }
    all_done = all_done && row.done != 0u;
    all_converged = all_converged && row.converged != 0u && row.nonfinite == 0u;
    h.nonfinite = max(h.nonfinite, row.nonfinite);
    h.stalled = max(h.stalled, row.stalled);
    h.nstep = max(h.nstep, row.nstep);
    h.tnstep = max(h.tnstep, row.tnstep);
    // max() drops a NaN; a non-finite row is reported by its flag.
    worst = max(worst, vec4<f32>(row.best_abs, row.best_rel, row.last_abs, row.last_rel));
  }
  h.best_abs = worst.x;
  h.best_rel = worst.y;
  h.last_abs = worst.z;
  h.last_rel = worst.w;
  h.converged = select(0u, 1u, all_converged);
  h.done = select(0u, 1u, all_done);
  h.skip_eval = h.done;
  going_rows.groups = vec3<u32>(going, 1u, 1u);
  if (h.ntrace < params.trace_cap) {
    ctrl.trace[h.ntrace] = worst.zw;
    h.ntrace += 1u;
  }
  ctrl.h = h;
}
