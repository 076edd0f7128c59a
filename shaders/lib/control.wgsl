// The control block of one solve: counters, best-so-far bookkeeping, line-search state and the
// residual trace. Lives in a GPU buffer for the whole solve; the CPU reads its header every few
// iterations. The buffer is also the layers' `gate` binding (lib/gate.wgsl), which reads words 0-3
// by position: keep skip_eval, eval_index, noise_key and noise_on first and in this order
// (src/solvers/control.ts checks it).
// Every kernel that includes this file declares `ctrl: Control` (read or read_write).
// The header is a struct of its own so that the fused step kernels (lib/step.wgsl) can keep it in
// a second buffer (ControlHeader alone) and ping-pong between the two: a kernel whose workgroups
// all read the header cannot also update it in place.

struct ControlHeader {
  skip_eval: u32,    // non-zero: layer evaluations are skipped (solve done, or line search finished)
  eval_index: u32,   // evaluations of f performed so far: each evaluation sees its own value, 0, 1, 2…
                     // (advanced by finish, the line search, and finish's MODE_ADVANCE)
  noise_key: u32,    // options.key, for stochastic layers
  noise_on: u32,     // 1 unless options.inference: stochastic layers draw noise only when set
  done: u32,         // the solve has stopped; solver kernels return at once
  nstep: u32,
  tnstep: u32,
  improved: u32,     // set by finish: 0 keep best; 1 best <- (candidate, previous); 2 best <- (previous, previous)
  converged: u32,    // the last stop-mode measure was below eps
  nonfinite: u32,    // a residual was NaN or infinite
  best_nvalid: u32,  // Broyden: valid factor columns of the best iterate
  best_abs: f32,
  best_rel: f32,
  last_abs: f32,
  last_rel: f32,
  phi0: f32,         // Broyden: ‖g(x)‖² at the current iterate (line search)
  ls_s: f32,         // line search: step of the point returned
  ls_eval_s: f32,    // line search: step of the next evaluation
  ls_phase: u32,     // 0 at s = 1, 1 at the quadratic step, 2 halving, 3 finished
  ls_extra: u32,     // extra evaluations this iteration
  ntrace: u32,
  step_s: f32,       // Broyden: the step s of the iteration just measured (Δx = s·update)
  stall: u32,        // iterations since the best iterate last improved (the stall rule, stallSteps)
  stalled: u32,      // the solve stopped on the stall rule
  pending: u32,      // fused steps: the residual partial sums of an evaluation wait for the next step's measurement
}

struct Control {
  h: ControlHeader,
  trace: array<vec2<f32>>, // (abs, rel) of every measurement, the initial one first
}

const LS_FINISHED: u32 = 3u;

var<workgroup> control_done_value: u32;

// ctrl.h.done, uniform across the workgroup, so kernels can return on it before barriers.
fn solve_done(local_index: u32) -> bool {
  if (local_index == 0u) { control_done_value = ctrl.h.done; }
  return workgroupUniformLoad(&control_done_value) != 0u;
}

fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
