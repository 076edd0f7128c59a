// Anderson: what an iteration measures from its evaluation, as partial sums for the next fused step
// (anderson_step.wgsl reduces them). The evaluated pair is ring slot p of the next iteration's
// entry (the slot the mix wrote: entry(nstep + params.ahead), where ahead = 1 in the iterations
// and 0 for the start's pair): per workgroup (with params.thread_sums per thread: `group` and
// `groups` count threads, lib/row_sums.wgsl),
//   step_partials[partial_out + group]                      the residual sums of (x_p, fx_p)
//   step_partials[partial_out + (1 + c) · groups + group]   Gram dots res_p · res_j, j = 4c .. 4c + 3
// over the valid slots j < len, res_j = fx_j − x_j (only row p of G changes each iteration).
// The iteration that restarted the history also moves G[p][p] to G[0][0] here, where no other
// workgroup reads G any more (anderson_step.wgsl's workgroups all read it).
// This piece declares bindings 0–6; an includer that evaluates f itself (anderson_dense_step.wgsl,
// anderson_split_measure.wgsl) adds its operands from 7. Call measure_begin, then measure_element for each element owned,
// then measure_store (all threads: it reduces).

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/residual_sums.wgsl
//! include lib/anderson_ring.wgsl

struct MeasureParams {
  m: u32,           // the dense variant's product sizes (0 for the generic kernel)
  n: u32,
  k: u32,
  state_size: u32,
  stride: u32,
  slots: u32,
  partial_out: u32, // offset of this iteration's partials in step_partials
  ahead: u32,
  splits: u32,      // the split-k variant's slices of k (0 elsewhere)
  thread_sums: u32, // 1: one entry per thread in each row, not per workgroup (lib/row_sums.wgsl)
  norm_groups: u32, // the norm variant (anderson_norm_measure.wgsl; 0 elsewhere): lib/norm_groups.wgsl's NormShape but its rows (m)
  norm_channels: u32,
  norm_spatial: u32,
  norm_eps: f32,
  conv_height: u32, // the convolution variant (anderson_conv_measure.wgsl; 0 elsewhere): lib/conv3x3.wgsl's ConvShape
  conv_width: u32,
  conv_in: u32,
  conv_out: u32,
}

@group(0) @binding(0) var<storage, read> ctrl: Control; // the current header (ctrl or the second header, which has room for the type)
@group(0) @binding(1) var<uniform> params: MeasureParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> x_ring: array<f32>; // written only by the split-k variant (the mix's u')
@group(0) @binding(4) var<storage, read_write> fx_ring: array<f32>;
@group(0) @binding(5) var<storage, read_write> gram: array<f32>;
@group(0) @binding(6) var<storage, read_write> step_partials: array<vec4<f32>>;

var<private> measured: vec4<u32>;   // the entry (p, len, restart, q) whose slot p is measured
var<private> measure_residual: vec4<f32>;
var<private> measure_dots: array<f32, MAX_SLOTS>;

// Whether the solve is done (uniform); else sets up the entry measured.
fn measure_begin(lid: u32) -> bool {
  if (solve_done(lid)) { return true; }
  measured = ring_entry(ctrl.h.nstep + params.ahead);
  return false;
}

// The slot measured, times the stride: where x_p and fx_p start.
fn measure_base() -> u32 { return measured.x * params.stride; }

// Element i of the pair: x = x_p[i], y = fx_p[i].
fn measure_element(i: u32, x: f32, y: f32) {
  measure_residual += residual_sums(x, y);
  let res = y - x;
  for (var j = 0u; j < measured.y; j++) {
    let base = j * params.stride;
    let other = select(fx_ring[base + i] - x_ring[base + i], res, j == measured.x);
    measure_dots[j] += res * other;
  }
}

// This thread's Gram dots of slots 4c … 4c + 3 (past len: 0).
fn measure_chunk(c: u32) -> vec4<f32> {
  return vec4<f32>(measure_dots[4u * c], measure_dots[4u * c + 1u], measure_dots[4u * c + 2u], measure_dots[4u * c + 3u]);
}

fn measure_store(group: u32, groups: u32, lid: u32) {
  let out = params.partial_out;
  if (params.thread_sums != 0u) {
    // Rows of groups · REDUCE_SIZE entries, this thread's own sums, no barrier.
    let parts = groups * REDUCE_SIZE;
    let entry = group * REDUCE_SIZE + lid;
    step_partials[out + entry] = measure_residual;
    for (var c = 0u; c * 4u < params.slots; c++) { step_partials[out + (1u + c) * parts + entry] = measure_chunk(c); }
  } else {
    let residual = workgroup_sum(measure_residual, lid);
    if (lid == 0u) { step_partials[out + group] = residual; }
    // Every chunk of the window (a uniform bound: the reduction has barriers).
    for (var c = 0u; c * 4u < params.slots; c++) {
      let dots = workgroup_sum(measure_chunk(c), lid);
      if (lid == 0u) { step_partials[out + (1u + c) * groups + group] = dots; }
    }
  }
  if (group == 0u && lid == 0u && params.ahead != 0u) {
    let mixed = ring_entry(ctrl.h.nstep);
    if (mixed.z != 0u) { gram[0] = gram[mixed.x * params.slots + mixed.x]; }
  }
}
