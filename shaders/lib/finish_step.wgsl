// The end-of-iteration bookkeeping of every solver — measure diffs(), keep the best so far,
// record the trace, count evaluations, decide whether to stop — for one thread to run (see
// finish.wgsl; the fused Picard kernel runs it too, so both follow one set of rules).
// The rules work on `hdr`, a private copy of the control header: the kernel loads it (from
// ctrl.h, or in the fused steps from whichever of the two header buffers is current), runs
// finish_step on one thread and stores it where it belongs. The trace is written in place
// (ctrl.trace) by the thread whose `hdr_writer` is set (every workgroup of a fused step runs the
// rules to learn the outcome; one records it).
// The including kernel declares `ctrl: Control` (read_write) and `params` with the fields eps,
// stop_rel, return_final, max_depth, trace_cap, memory, line_search, stall_steps.
// The stall rule (stall_steps > 0): the solve stops once the best iterate has not improved for
// stall_steps iterations in a row (hdr.stalled = 1), as TorchDEQ's Broyden does after 30.
//
// diffs(u, r): abs = ‖r‖, rel = abs / (‖r + u‖ + 1e-9). The sums t carry (Σr², Σ(r+u)² for
// u = x, Σ(r+u)² for u = y) so each mode takes the denominator its solver's semantics need.

//! include lib/control.wgsl

var<private> hdr: ControlHeader;
var<private> hdr_writer: bool = true;

// The finish modes: src/solvers/run.ts's FinishMode reads them from here (build-time reflection).
const MODE_PICARD_FIRST: u32 = 0u;
const MODE_PICARD: u32 = 1u;
const MODE_ANDERSON_FIRST: u32 = 2u;
const MODE_ANDERSON: u32 = 3u;
const MODE_BROYDEN_FIRST: u32 = 4u;
const MODE_BROYDEN: u32 = 5u;
const MODE_ADVANCE: u32 = 6u;

fn measure(r2: f32, denominator2: f32) -> vec2<f32> {
  let abs_value = sqrt(r2);
  return vec2<f32>(abs_value, abs_value / (sqrt(denominator2) + 1e-9));
}

fn stop_value(m: vec2<f32>) -> f32 {
  return select(m.x, m.y, params.stop_rel != 0u);
}

// Records a measurement and returns whether its iterate becomes the best one.
fn record(m: vec2<f32>, initial: bool) -> bool {
  if (hdr.ntrace < params.trace_cap) {
    if (hdr_writer) { ctrl.trace[hdr.ntrace] = m; }
    hdr.ntrace += 1u;
  }
  hdr.last_abs = m.x;
  hdr.last_rel = m.y;
  let keep_latest = initial || params.return_final != 0u;
  if (!(is_finite(m.x) && is_finite(m.y))) {
    hdr.nonfinite = 1u;
    hdr.converged = 0u;
    if (initial) { hdr.best_abs = m.x; hdr.best_rel = m.y; }
    return initial;
  }
  let value = stop_value(m);
  let better = keep_latest || value < select(hdr.best_abs, hdr.best_rel, params.stop_rel != 0u);
  if (keep_latest) {
    hdr.best_abs = m.x;
    hdr.best_rel = m.y;
  } else {
    hdr.best_abs = min(hdr.best_abs, m.x);
    hdr.best_rel = min(hdr.best_rel, m.y);
  }
  hdr.converged = select(0u, 1u, value < params.eps);
  return better;
}

fn stop_now(eps_stops: bool) -> bool {
  return (eps_stops && hdr.converged != 0u) || hdr.nonfinite != 0u || hdr.nstep >= params.max_depth;
}

// One iteration's bookkeeping from its residual sums t (thread 0 only).
fn finish_step(mode: u32, t: vec4<f32>) {
  var improved = 0u;
  var done = false;
  if (params.line_search == 0u || mode != MODE_BROYDEN) { hdr.eval_index += 1u; }
  switch mode {
    case MODE_PICARD_FIRST: {
      // One evaluation f(u0) gives both the initial measure diffs(u0, r0) and that of the first
      // iterate u1 = f(u0), diffs(u1, u1 − u0).
      hdr.nstep = 0u;
      hdr.tnstep = 1u;
      record(measure(t.x, t.y), true);
      improved = 2u;
      done = stop_now(true);
      if (!done) {
        hdr.nstep = 1u;
        hdr.tnstep = 2u;
        if (record(measure(t.x, t.z), false)) { improved = 1u; }
        done = stop_now(true);
      }
    }
    case MODE_PICARD: {
      hdr.nstep += 1u;
      hdr.tnstep += 1u;
      if (record(measure(t.x, t.z), false)) { improved = 1u; }
      done = stop_now(true);
    }
    case MODE_ANDERSON_FIRST: {
      hdr.nstep = 1u;
      hdr.tnstep = 1u;
      record(measure(t.x, t.z), true);
      // u1 = f(u0) is the first best iterate, unless it is not finite: then u0 stays.
      improved = select(1u, 2u, hdr.nonfinite != 0u);
      done = stop_now(true);
    }
    case MODE_ANDERSON: {
      hdr.nstep += 1u;
      hdr.tnstep += 2u;
      if (record(measure(t.x, t.y), false)) { improved = 1u; }
      done = stop_now(true);
    }
    case MODE_BROYDEN_FIRST: {
      hdr.nstep = 0u;
      hdr.tnstep = 0u;
      record(measure(t.x, t.y), true);
      improved = 2u;
      hdr.best_nvalid = 0u;
      hdr.phi0 = t.x;
      done = stop_now(params.return_final == 0u);
    }
    default: { // MODE_BROYDEN
      let before = hdr.nstep;
      hdr.tnstep += 1u + hdr.ls_extra;
      if (record(measure(t.x, t.y), false)) {
        improved = 1u;
        hdr.best_nvalid = min(before, params.memory);
      }
      hdr.nstep = before + 1u;
      hdr.phi0 = t.x;
      done = stop_now(params.return_final == 0u);
    }
  }
  // The first modes start the count; every later iteration adds one unless it improved the best.
  let first = mode == MODE_PICARD_FIRST || mode == MODE_ANDERSON_FIRST || mode == MODE_BROYDEN_FIRST;
  hdr.stall = select(select(hdr.stall + 1u, 0u, improved == 1u), 0u, first);
  if (!done && params.stall_steps > 0u && hdr.stall >= params.stall_steps) {
    done = true;
    hdr.stalled = 1u;
  }
  hdr.improved = improved;
  hdr.done = select(0u, 1u, done);
  hdr.skip_eval = hdr.done;
  hdr.step_s = hdr.ls_s;
  hdr.ls_phase = 0u;
  hdr.ls_s = 1.0;
  hdr.ls_eval_s = 1.0;
  hdr.ls_extra = 0u;
}
