// Anderson: mixing. u' = (1 − β)·Σ α_j x_j + β·Σ α_j fx_j over the valid slots, written into
// ring slot q where the next iteration's history entry goes. On a restart, slot 0 first takes a
// copy of slot p (the history becomes just the latest entry). Each thread reads everything it
// needs at index i before writing index i, so q == p (window 1) is safe.
// Bindings: ctrl (read); params {n, stride, groups, beta}; ring = the schedule (lib/anderson_ring.wgsl);
//           alpha [slots]; x_ring, fx_ring [slots × stride] (read_write).
// Dispatch: (groups), 256 threads, grid-stride.

//! include lib/control.wgsl
//! include lib/anderson_ring.wgsl

struct MixParams { n: u32, stride: u32, groups: u32, beta: f32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: MixParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> alpha: array<f32>;
@group(0) @binding(4) var<storage, read_write> x_ring: array<f32>;
@group(0) @binding(5) var<storage, read_write> fx_ring: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u) {
  // A plain read, not solve_done(): no barrier follows, and on SwiftShader a barrier in a
  // 256-thread workgroup costs more than the mixing itself.
  if (ctrl.h.done != 0u) { return; }
  let entry = ring_entry(ctrl.h.nstep);
  let p = entry.x;
  let len = entry.y;
  let q = entry.w;
  let s = params.stride;
  for (var i = id.x; i < params.n; i += params.groups * 256u) {
    var sum_x = 0.0;
    var sum_fx = 0.0;
    for (var j = 0u; j < len; j++) {
      sum_x += alpha[j] * x_ring[j * s + i];
      sum_fx += alpha[j] * fx_ring[j * s + i];
    }
    let mixed = (1.0 - params.beta) * sum_x + params.beta * sum_fx;
    if (entry.z != 0u) {
      x_ring[i] = x_ring[p * s + i];
      fx_ring[i] = fx_ring[p * s + i];
    }
    x_ring[q * s + i] = mixed;
  }
}
