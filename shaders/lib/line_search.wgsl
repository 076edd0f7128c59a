// Broyden's Armijo line search: the decision after one evaluation, as a function of a header
// (the decision of shaders/line_search.wgsl, of the dense trials' prologue and of the decide
// kernel after the last dense trial: one set of rules). With φ = ‖g(x + s·update)‖² of the
// evaluation at h.ls_eval_s, φ0 = h.phi0, φ'0 = −φ0, c1 = 1e-4, amin = 1e-2:
//   phase 0 (s = 1):  accept if φ ≤ φ0 + c1·φ'0; else the quadratic step s1 = −φ'0 / (2(φ − φ0 − φ'0))
//   phase 1 (s1, not tested): halve while s > amin
//   phase 2 (halving): accept test at the unclamped s_next, then s = max(amin, s_next)
// The original's cubic step is always replaced by s/2 (its two safeguards cover every finite
// value), so halving is exact. Each decision advances eval_index past the evaluation (so every
// trial of a stochastic layer gets its own noise; finish adds nothing then), and when finished
// closes the evaluation gate (skip_eval = 1).

//! include lib/control.wgsl

const LS_C1: f32 = 1e-4;
const LS_AMIN: f32 = 1e-2;
// Evaluations one search may take: s = 1, the quadratic step, and at most 6 halvings to amin
// (src/solvers/broyden.ts encodes this many trials per iteration).
const LINE_SEARCH_EVALS: u32 = 8u;

// True when the evaluation at h.ls_eval_s ran and waits for its decision (the search is on).
fn line_search_open(h: ControlHeader) -> bool {
  return h.done == 0u && h.ls_phase != LS_FINISHED;
}

// The header after the decision on φ of the evaluation at h.ls_eval_s (line_search_open(h)).
fn line_search_decide(h: ControlHeader, phi: f32) -> ControlHeader {
  var next = h;
  next.eval_index += 1u;
  let phi0 = h.phi0;
  let slope0 = -phi0;
  switch h.ls_phase {
    case 0u: {
      if (phi <= phi0 + LS_C1 * slope0) {
        next.ls_phase = LS_FINISHED;
      } else {
        let s1 = -slope0 / (2.0 * (phi - phi0 - slope0));
        next.ls_s = s1;
        next.ls_eval_s = s1;
        next.ls_extra = 1u;
        next.ls_phase = 1u;
      }
    }
    case 1u: {
      if (h.ls_s > LS_AMIN) {
        next.ls_eval_s = h.ls_s * 0.5;
        next.ls_extra += 1u;
        next.ls_phase = 2u;
      } else {
        next.ls_phase = LS_FINISHED;
      }
    }
    default: {
      let s_next = h.ls_eval_s;
      let accepted = phi <= phi0 + LS_C1 * s_next * slope0;
      let s = max(LS_AMIN, s_next);
      next.ls_s = s;
      if (accepted || !(s > LS_AMIN)) {
        next.ls_phase = LS_FINISHED;
      } else {
        next.ls_eval_s = s * 0.5;
        next.ls_extra += 1u;
      }
    }
  }
  next.skip_eval = select(0u, 1u, next.ls_phase == LS_FINISHED);
  return next;
}

// The step of the point returned should the search end with the evaluation at h.ls_eval_s
// (h: the header that scheduled it): 1 and s1 are returned as evaluated, a halving step clamped
// to amin (the original's quirk: then the returned point is not the one evaluated last).
fn line_search_accept_s(h: ControlHeader) -> f32 {
  return select(h.ls_eval_s, max(LS_AMIN, h.ls_eval_s), h.ls_phase == 2u);
}
