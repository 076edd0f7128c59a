// End of one solver iteration, in a single workgroup: reduces the residual partial sums, measures
// diffs(), keeps the best-so-far bookkeeping, records the trace, counts evaluations and decides
// whether to stop — all on the GPU, so the CPU only has to look every few iterations.
// Bindings: ctrl (read_write); params; partials [groups] vec4 from residual.wgsl or broyden_finalize.wgsl.
// Dispatch: (1). Never gated: once done, it clears `improved` so a later commit copies nothing.
//
// It also advances ctrl.h.eval_index past the evaluation it measures, so the next evaluation sees a
// new index (stochastic layers draw per-evaluation noise from it). Evaluations that finish does not
// follow get theirs elsewhere: Broyden's line-search trials in line_search.wgsl (params.line_search
// = 1, so finish adds nothing), Anderson's extra initial f(u1) by MODE_ADVANCE, which does only that.

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/finish_step.wgsl

const REDUCE_SIZE: u32 = 64u;

struct FinishParams {
  eps: f32,
  stop_rel: u32,
  return_final: u32,
  max_depth: u32,
  groups: u32,
  mode: u32,
  trace_cap: u32,
  memory: u32, // Broyden: number of factor columns L
  line_search: u32, // Broyden with ls: line_search.wgsl has counted this iteration's evaluations
  stall_steps: u32, // the stall rule (lib/finish_step.wgsl); 0: off
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: FinishParams;
@group(0) @binding(2) var<storage, read> partials: array<vec4<f32>>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (params.mode == MODE_ADVANCE) {
    // The evaluation before this ran only if the solve is still going (the gate was open).
    if (lid == 0u && ctrl.h.done == 0u) { ctrl.h.eval_index += 1u; }
    return;
  }
  if (solve_done(lid)) {
    if (lid == 0u) { ctrl.h.improved = 0u; }
    return;
  }
  var sums = vec4<f32>(0.0);
  for (var g = lid; g < params.groups; g += REDUCE_SIZE) { sums += partials[g]; }
  let t = workgroup_sum(sums, lid);
  if (lid != 0u) { return; }

  hdr = ctrl.h;
  finish_step(params.mode, t);
  ctrl.h = hdr;
}
