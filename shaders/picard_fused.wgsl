// Picard on the tanh block, fused: whole iterations u ← tanh(u @ w + qd + b) inside one
// workgroup — the matrix-vector product, the residual sums, the end-of-iteration bookkeeping
// (lib/finish_step.wgsl, the same rules as finish.wgsl) and the best-so-far copy — for up to
// params.iterations iterations per dispatch (bounded, so a browser's GPU watchdog never sees a
// long dispatch). For states of at most 1024 values, where separate kernels per step would spend
// their time launching, not computing.
// (includes lib/control.wgsl, lib/reduce.wgsl, lib/finish_step.wgsl, lib/activations.wgsl)
// Bindings: ctrl (read_write); params; w [d, d]; b [d]; qd [batch, d]; state [batch, d] (the current
//           iterate, kept between dispatches); best_u, best_prev [batch, d].
// Dispatch: (1). The first dispatch of a solve has params.first = 1 (its first iteration also
// measures the starting point, as MODE_PICARD_FIRST).

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
  d: u32,
  batch: u32,
  iterations: u32,
  first: u32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: FusedParams;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> qd: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(7) var<storage, read_write> best_prev: array<f32>;

var<workgroup> u_shared: array<f32, 1024>;
var<workgroup> outcome: u32; // improved | done << 8, from thread 0's bookkeeping

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let d = params.d;
  let n = params.batch * d;
  for (var e = 0u; e < PER_THREAD; e++) {
    let i = lid + e * 256u;
    if (i < n) { u_shared[i] = state[i]; }
  }
  workgroupBarrier();
  for (var it = 0u; it < params.iterations; it++) {
    var y: array<f32, 4>;
    var sums = vec4<f32>(0.0);
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = lid + e * 256u;
      if (i < n) {
        let row = (i / d) * d;
        let j = i % d;
        var acc = 0.0;
        for (var k = 0u; k < d; k++) { acc += u_shared[row + k] * w[k * d + j]; }
        let value = safe_tanh(acc + qd[i] + b[j]);
        let x = u_shared[i];
        let r = value - x;
        let z = value + r;
        sums += vec4<f32>(r * r, value * value, z * z, 0.0);
        y[e] = value;
      }
    }
    let totals = workgroup_sum(sums, lid);
    if (lid == 0u) {
      finish_step(select(MODE_PICARD, MODE_PICARD_FIRST, params.first != 0u && it == 0u), totals);
      outcome = ctrl.improved | (ctrl.done << 8u);
    }
    let result = workgroupUniformLoad(&outcome);
    let improved = result & 0xffu;
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = lid + e * 256u;
      if (i < n) {
        let x = u_shared[i];
        if (improved != 0u) {
          best_u[i] = select(y[e], x, improved == 2u);
          best_prev[i] = x;
        }
      }
    }
    workgroupBarrier(); // every read of u_shared above is done before it is overwritten
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = lid + e * 256u;
      if (i < n) { u_shared[i] = y[e]; }
    }
    workgroupBarrier();
    if ((result >> 8u) != 0u) { break; }
  }
  for (var e = 0u; e < PER_THREAD; e++) {
    let i = lid + e * 256u;
    if (i < n) { state[i] = u_shared[i]; }
  }
}
