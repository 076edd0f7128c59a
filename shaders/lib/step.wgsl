// The bookkeeping of a fused solver step, for the kernel that follows an evaluation: the dispatch
// boundary is the only barrier between all workgroups, so one dispatch both ends the iteration
// before it and does this iteration's work (docs/architecture.md, "Fused steps").
//
// step_begin, run by every workgroup of the step kernel:
//   1. loads the current control header — ctrl.h or ctrl_b, by params.header_in_b: the two
//      ping-pong, since workgroups that all read the header cannot update it in place;
//   2. when the previous step left residual partial sums (hdr.pending), sums them in a fixed order
//      (every workgroup the same sums, so every workgroup reaches the same outcome) and runs the
//      end-of-iteration rules (lib/finish_step.wgsl, params.mode) on its copy; otherwise (the
//      first step of a solve) counts the evaluation before it;
//   3. workgroup 0 stores the new header in the other buffer (and records the trace);
//   4. commits its share of the best-so-far copy when the rules found an improvement;
//   5. returns whether the solve is done (then the kernel does nothing more).
// step_end stores the workgroup's partial sums of the residual it measured, for the next step.
//
// The includer declares: `ctrl: Control` and `ctrl_b: ControlHeader` (read_write); `params` with
// lib/finish_step.wgsl's fields and mode, header_in_b, partial_groups (partials to read),
// partial_in, partial_out (their offsets in step_partials), n; `step_partials` (read_write
// vec4); `step_candidate`, `step_previous` (the iterate measured last and the one before it) and
// `best_u`, `best_prev` (read_write) [n]; and `REDUCE_SIZE` equal to its workgroup size.

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/finish_step.wgsl

var<workgroup> step_state: u32;

// Steps 1–5 above for workgroup `group` of `groups` (flat index), thread `lid`.
fn step_begin(group: u32, groups: u32, lid: u32) -> bool {
  if (lid == 0u) {
    if (params.header_in_b != 0u) { hdr = ctrl_b; } else { hdr = ctrl.h; }
    hdr_writer = group == 0u;
    step_state = select(0u, 1u, hdr.done == 0u && hdr.pending != 0u);
  }
  if (workgroupUniformLoad(&step_state) != 0u) {
    var sums = vec4<f32>(0.0);
    for (var g = lid; g < params.partial_groups; g += REDUCE_SIZE) { sums += step_partials[params.partial_in + g]; }
    let t = workgroup_sum(sums, lid);
    if (lid == 0u) { finish_step(params.mode, t); }
  } else if (lid == 0u) {
    // Nothing to measure: the solve is done, or this is its first step (the start's bookkeeping
    // measured the evaluation before it; count that evaluation, as finish does for those it measures).
    hdr.improved = 0u;
    if (hdr.done == 0u) { hdr.eval_index += 1u; }
  }
  if (lid == 0u) {
    hdr.pending = select(0u, 1u, hdr.done == 0u);
    if (group == 0u) {
      if (params.header_in_b != 0u) { ctrl.h = hdr; } else { ctrl_b = hdr; }
    }
    step_state = hdr.improved | (hdr.done << 8u);
  }
  let outcome = workgroupUniformLoad(&step_state);
  let improved = outcome & 0xffu;
  if (improved != 0u) {
    for (var i = group * REDUCE_SIZE + lid; i < params.n; i += groups * REDUCE_SIZE) {
      let prev = step_previous[i];
      best_u[i] = select(step_candidate[i], prev, improved == 2u);
      best_prev[i] = prev;
    }
  }
  return (outcome >> 8u) != 0u;
}

// Stores this workgroup's residual partial sums (r², y², (y + r)² as in residual.wgsl) for the next step.
fn step_end(group: u32, lid: u32, sums: vec4<f32>) {
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { step_partials[params.partial_out + group] = total; }
}

// The residual sums of one element of y = f(x) (residual.wgsl's).
fn step_residual(x: f32, y: f32) -> vec4<f32> {
  let r = y - x;
  let z = y + r;
  return vec4<f32>(r * r, y * y, z * z, 0.0);
}
