// The bookkeeping of a fused solver step, for the kernel that follows an evaluation: the dispatch
// boundary is the only barrier between all workgroups, so one dispatch both ends the iteration
// before it and does this iteration's work (docs/architecture.md, "Fused steps").
//
// step_begin, run by every workgroup of the step kernel:
//   1. loads the current control header — ctrl.h or ctrl_b, by params.header_in_b: the two
//      ping-pong, since workgroups that all read the header cannot update it in place;
//   2. when the previous step left residual partial sums (hdr.pending), sums them in a fixed order
//      (lib/row_sums.wgsl: one per workgroup, or with params.thread_sums one per thread; every
//      workgroup the same sums, so every workgroup reaches the same outcome) and runs the
//      end-of-iteration rules (lib/finish_step.wgsl, params.mode) on its copy; otherwise (the
//      first step of a solve) counts the evaluation before it;
//   3. workgroup 0 stores the new header in the other buffer (and records the trace);
//   4. commits its share of the best-so-far copy when the rules found an improvement;
//   5. returns whether the solve is done (then the kernel does nothing more).
// step_end stores the workgroup's partial sums of the residual it measured, for the next step
// (with params.thread_sums each thread's own, without a tree).
//
// This piece declares bindings 0–3 and 6–7 of every step kernel (below); the includer adds its
// own from 8, declares `REDUCE_SIZE` equal to its workgroup size, and supplies the commit's
// operands, the iterate measured last and the one before it:
//   fn step_candidate_at(i: u32) -> f32;  fn step_previous_at(i: u32) -> f32
// (lib/step_operands.wgsl: as bindings 4 and 5; a kernel that writes the ring they live in reads
// them from its own binding instead, since a buffer it writes cannot also be bound read-only).

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/finish_step.wgsl
//! include lib/residual_sums.wgsl
//! include lib/row_sums.wgsl

struct StepParams {
  // lib/finish_step.wgsl's rules
  eps: f32,
  stop_rel: u32,
  return_final: u32,
  max_depth: u32,
  trace_cap: u32,
  memory: u32,
  line_search: u32,
  stall_steps: u32,
  mode: u32,           // the finish mode of the iteration measured
  header_in_b: u32,    // 1: the current header is ctrl_b (the new one goes to ctrl.h); 0: the reverse
  partial_groups: u32, // partials the step before wrote
  partial_in: u32,     // their offset in step_partials
  partial_out: u32,    // the offset of this step's
  state_size: u32,     // n, the state's values
  m: u32,              // the dense step's product C [m, n] = A [m, k] · B [k, n] (0 elsewhere)
  n: u32,
  k: u32,
  stride: u32,         // Anderson (0 elsewhere): ring slot stride, slots, Tikhonov term, β
  slots: u32,
  reg: f32,
  beta: f32,
  chunk: u32,          // the split-k steps (0 elsewhere): k per slice, slices, and the offsets in
  splits: u32,         // gemm_partial of the partial products this step reads and writes
  split_in: u32,
  split_out: u32,
  thread_sums: u32,    // 1: the partials hold one entry per thread (lib/row_sums.wgsl), in and out
  norm_groups: u32,    // the norm steps (0 elsewhere): lib/norm_groups.wgsl's NormShape but its rows (m)
  norm_channels: u32,
  norm_spatial: u32,
  norm_eps: f32,
  conv_height: u32,    // the convolution step (0 elsewhere): lib/conv3x3.wgsl's ConvShape
  conv_width: u32,
  conv_in: u32,
  conv_out: u32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read_write> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: StepParams;
@group(0) @binding(3) var<storage, read_write> step_partials: array<vec4<f32>>; // [2, half]
@group(0) @binding(6) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(7) var<storage, read_write> best_prev: array<f32>;

// lib/row_sums.wgsl's rows: the partials.
fn row_entry(index: u32) -> vec4<f32> { return step_partials[index]; }

var<workgroup> step_state: u32;
// ctrl.h.nstep after this step's rules: set by step_begin before its commit, for every thread
// (the commit's operand hooks and the solver's own work may pick ring slots by it).
var<workgroup> step_nstep: u32;

// Steps 1–5 above for workgroup `group` of `groups` (flat index), thread `lid`.
fn step_begin(group: u32, groups: u32, lid: u32) -> bool {
  if (lid == 0u) {
    if (params.header_in_b != 0u) { hdr = ctrl_b; } else { hdr = ctrl.h; }
    hdr_writer = group == 0u;
    step_state = select(0u, 1u, hdr.done == 0u && hdr.pending != 0u);
  }
  if (workgroupUniformLoad(&step_state) != 0u) {
    let t = sums_total_first(params.partial_in, params.partial_groups, params.thread_sums != 0u, lid);
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
    step_nstep = hdr.nstep;
  }
  let outcome = workgroupUniformLoad(&step_state);
  let improved = outcome & 0xffu;
  if (improved != 0u) {
    for (var i = group * REDUCE_SIZE + lid; i < params.state_size; i += groups * REDUCE_SIZE) {
      let prev = step_previous_at(i);
      best_u[i] = select(step_candidate_at(i), prev, improved == 2u);
      best_prev[i] = prev;
    }
  }
  return (outcome >> 8u) != 0u;
}

// Stores this workgroup's residual partial sums (r², y², (y + r)² as in residual.wgsl) for the next step.
fn step_end(group: u32, lid: u32, sums: vec4<f32>) {
  if (params.thread_sums != 0u) {
    step_partials[params.partial_out + group * REDUCE_SIZE + lid] = sums;
    return;
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { step_partials[params.partial_out + group] = total; }
}
