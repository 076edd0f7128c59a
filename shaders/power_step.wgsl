// One step of the power iteration behind spectralRadius (src/backprop/stability.ts): given
// w = J_fᵀ v (the layer's adjoint at the fixed point), it measures ‖w‖ and normalises, v = w / ‖w‖,
// in one workgroup (each thread sums a fixed strided subset, then a fixed tree: deterministic).
// With params.accumulate, log ‖w‖ is added to state[0] (the late iterations, whose norms follow the
// dominant eigenvalues); with params.count > 0, state[1] = exp(state[0] / count), the estimate
// of the spectral radius (the geometric mean of the late growth factors, which also converges when
// the dominant eigenvalues are a complex pair).
// Bindings: params {n, accumulate, count}; w [n] (read); v [n]; state [2].
// Dispatch: (1).
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 256u;

struct PowerParams { n: u32, accumulate: u32, count: u32 }

@group(0) @binding(0) var<uniform> params: PowerParams;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = lid; i < params.n; i += REDUCE_SIZE) { sum += w[i] * w[i]; }
  let norm = sqrt(workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid).x);
  // A zero vector stays zero (a nilpotent or zero Jacobian: the radius is 0).
  let scale = select(0.0, 1.0 / norm, norm > 0.0);
  for (var i = lid; i < params.n; i += REDUCE_SIZE) { v[i] = w[i] * scale; }
  if (lid == 0u) {
    if (params.accumulate != 0u) { state[0] += log(max(norm, 1e-30)); }
    if (params.count > 0u) { state[1] = select(0.0, exp(state[0] / f32(params.count)), norm > 0.0); }
  }
}
