// The two kernels of jacobianPenalty (src/backprop/jacobian-penalty.ts), a Hutchinson estimate of
// ‖J_f‖_F² at a point u and its parameter gradient from first-order kernels only (the layer's own
// forward and VJP, so any layer works). Per Hutchinson sample s:
// entry `points`:    v = ±1 with equal odds (bit 31 of rng_u32(rng_stream_key(seed, s), i), the
//                    counter-based generator of lib/rng.wgsl, so the vectors are generated here,
//                    never uploaded, and src/reference/jacobian-penalty.ts draws the same ones);
//                    plus = u + h·v, minus = u − h·v.
// The caller then evaluates f at both points (the layer's forward) into f_plus and f_minus.
// entry `cotangent`: jv = (f_plus − f_minus) · inv_2h, the central difference ≈ J_f v (its error
//                    is O(h²) against O(h) for a one-sided one, at the same cost for one sample);
//                    writes jv (the cotangent of both VJPs that follow) and adds Σ jv² · mean_scale
//                    to estimate[0] (overwrites it when params.first ≠ 0). One workgroup: each
//                    thread sums a fixed strided subset, then a fixed tree, so it is deterministic.
// Bindings: params {n, seed, sample, first, h, inv_2h, mean_scale}; u, f_plus, f_minus [n] (read);
//           plus, minus, jv [n]; estimate [1].
// Dispatch: points (min(ceil(n / 256), max groups)), 256 threads, grid-stride; cotangent (1).
//! include lib/rng.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 256u;

struct PenaltyParams { n: u32, seed: u32, sample: u32, first: u32, h: f32, inv_2h: f32, mean_scale: f32 }

@group(0) @binding(0) var<uniform> params: PenaltyParams;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> plus: array<f32>;
@group(0) @binding(3) var<storage, read_write> minus: array<f32>;
@group(0) @binding(4) var<storage, read> f_plus: array<f32>;
@group(0) @binding(5) var<storage, read> f_minus: array<f32>;
@group(0) @binding(6) var<storage, read_write> jv: array<f32>;
@group(0) @binding(7) var<storage, read_write> estimate: array<f32>;

@compute @workgroup_size(256)
fn points(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let key = rng_stream_key(params.seed, params.sample);
  for (var i = id.x; i < params.n; i += groups.x * 256u) {
    let step = select(-params.h, params.h, (rng_u32(key, i) >> 31u) == 1u);
    plus[i] = u[i] + step;
    minus[i] = u[i] - step;
  }
}

@compute @workgroup_size(256)
fn cotangent(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = lid; i < params.n; i += REDUCE_SIZE) {
    let value = (f_plus[i] - f_minus[i]) * params.inv_2h;
    jv[i] = value;
    sum += value * value;
  }
  let total = workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid).x * params.mean_scale;
  if (lid == 0u) {
    if (params.first != 0u) { estimate[0] = total; } else { estimate[0] += total; }
  }
}
