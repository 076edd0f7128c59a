// Picard on a dense layer with a fused epilogue, fused: whole iterations
// u ← epilogue(u @ weight + bias) inside one workgroup (the tanh block: epilogue add(Qd) → tanh;
// the chain is lib/epilogue.wgsl's override constants, without dropout) — the matrix-vector product, the residual sums, the end-of-iteration bookkeeping
// (lib/finish_step.wgsl, the same rules as finish.wgsl) and the best-so-far copy — for up to
// params.iterations iterations per dispatch (bounded, so a browser's GPU watchdog never sees a
// long dispatch). For states of at most 1024 values, where separate kernels per step would spend
// their time launching, not computing.
// Bindings: ctrl (read_write); params; weight [d, d]; bias [d]; epi_qd [batch, d]; state [batch, d] (the current
//           iterate, kept between dispatches); best_u, best_prev [batch, d].
// Dispatch: (1). The first dispatch of a solve has params.first = 1 (its first iteration also
// measures the starting point, as MODE_PICARD_FIRST).

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/finish_step.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 256u;

const MAX_STATE: u32 = 1024u;
const PER_THREAD: u32 = 4u; // MAX_STATE / 256

struct FusedParams {
  eps: f32,
  stop_rel: u32,
  return_final: u32,
  max_depth: u32,
  trace_cap: u32,
  memory: u32,
  line_search: u32,
  stall_steps: u32,
  d: u32,
  batch: u32,
  iterations: u32,
  first: u32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: FusedParams;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(7) var<storage, read_write> best_prev: array<f32>;

// Two buffers of MAX_STATE values: the iterate and the next one, swapped every iteration, so the
// new iterate is written while others still read the old one and an iteration needs only two
// barriers (on SwiftShader each barrier of a 256-thread workgroup costs ~0.1 ms, more than the
// arithmetic at these sizes).
var<workgroup> u_shared: array<f32, 2048>;
var<workgroup> group_sums: array<vec4<f32>, 16>; // second level of the residual sums
var<workgroup> outcome: u32; // improved | done << 8, from thread 0's bookkeeping

// Σ of reduce_scratch[0..count) (thread 0 gets it): 16 threads sum 16 entries each, then thread 0
// sums theirs — two barriers instead of a tree's nine, in a fixed order (deterministic).
fn residual_totals(lid: u32, count: u32) -> vec4<f32> {
  if (lid < 16u) {
    var sums = vec4<f32>(0.0);
    for (var t = lid * 16u; t < min(lid * 16u + 16u, count); t++) { sums += reduce_scratch[t]; }
    group_sums[lid] = sums;
  }
  workgroupBarrier();
  var totals = vec4<f32>(0.0);
  if (lid == 0u) {
    for (var t = 0u; t < 16u; t++) { totals += group_sums[t]; }
  }
  return totals;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  if (lid == 0u) { hdr = ctrl.h; }
  let d = params.d;
  let n = params.batch * d;
  for (var e = 0u; e < PER_THREAD; e++) {
    let i = lid + e * 256u;
    if (i < n) { u_shared[i] = state[i]; }
  }
  workgroupBarrier();
  var cur = 0u; // u_shared[cur * MAX_STATE + i] is the iterate
  for (var it = 0u; it < params.iterations; it++) {
    let base = cur * MAX_STATE;
    let next = (1u - cur) * MAX_STATE;
    var y: array<f32, 4>;
    var x: array<f32, 4>;
    var sums = vec4<f32>(0.0);
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = lid + e * 256u;
      if (i < n) {
        let row = base + (i / d) * d;
        let j = i % d;
        var acc = 0.0;
        for (var k = 0u; k < d; k++) { acc += u_shared[row + k] * weight[k * d + j]; }
        let value = epilogue_forward(acc + bias[j], i, 0u);
        let u = u_shared[base + i];
        let r = value - u;
        let z = value + r;
        sums += vec4<f32>(r * r, value * value, z * z, 0.0);
        y[e] = value;
        x[e] = u;
        // Nobody reads the other buffer this iteration; the next one reads it after the barriers below.
        u_shared[next + i] = value;
      }
    }
    reduce_scratch[lid] = sums;
    workgroupBarrier();
    let totals = residual_totals(lid, min(n, 256u));
    if (lid == 0u) {
      finish_step(select(MODE_PICARD, MODE_PICARD_FIRST, params.first != 0u && it == 0u), totals);
      outcome = hdr.improved | (hdr.done << 8u);
    }
    let result = workgroupUniformLoad(&outcome);
    let improved = result & 0xffu;
    if (improved != 0u) {
      for (var e = 0u; e < PER_THREAD; e++) {
        let i = lid + e * 256u;
        if (i < n) {
          best_u[i] = select(y[e], x[e], improved == 2u);
          best_prev[i] = x[e];
        }
      }
    }
    cur = 1u - cur;
    if ((result >> 8u) != 0u) { break; }
  }
  if (lid == 0u) { ctrl.h = hdr; }
  // Each thread stores the values it wrote itself: no barrier needed.
  for (var e = 0u; e < PER_THREAD; e++) {
    let i = lid + e * 256u;
    if (i < n) { state[i] = u_shared[cur * MAX_STATE + i]; }
  }
}
