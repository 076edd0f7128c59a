// Adam with decoupled (AdamW) weight decay. Per step: one dispatch of `tick`, then one dispatch
// of `main` per parameter tensor, all in the same pass.
//   tick:  s1 ← β1·s1 + 1,  s2 ← β2·s2 + 1          (s = 1 + β + … + β^(t−1), state starts at 0)
//   main:  m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
//          p ← p − lr·wd·p − lr/c1 · m / (√v / √c2 + eps),  with c = 1 − β^t = (1 − β)·s
// The step count lives on the GPU as these geometric sums: 1 − β^t computed directly in f32
// loses about four digits for β2 = 0.999 and small t; (1 − β)·s has no cancellation, and
// 1 − β comes from the CPU in float64.
// Bindings: params {lr, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay};
//           state {s1, s2} (only tick writes it); param, m, v [n] (read_write); grad [n] (read).
//           n = arrayLength(param): bind regions of exactly n floats.
// Dispatch: tick (1); main (min(ceil(n / 256), max groups)), 256 threads, grid-stride.

struct AdamParams {
  lr: f32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  eps: f32,
  weight_decay: f32,
}

struct AdamState { s1: f32, s2: f32 }

@group(0) @binding(0) var<uniform> params: AdamParams;
@group(0) @binding(1) var<storage, read_write> state: AdamState;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(1)
fn tick() {
  state.s1 = params.beta1 * state.s1 + 1.0;
  state.s2 = params.beta2 * state.s2 + 1.0;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = arrayLength(&param);
  let step_size = params.lr / (params.one_minus_beta1 * state.s1);
  let inv_sqrt_c2 = inverseSqrt(params.one_minus_beta2 * state.s2);
  let decay = params.lr * params.weight_decay;
  for (var i = id.x; i < n; i += groups.x * 256u) {
    let g = grad[i];
    let m1 = params.beta1 * m[i] + params.one_minus_beta1 * g;
    let v1 = params.beta2 * v[i] + params.one_minus_beta2 * g * g;
    m[i] = m1;
    v[i] = v1;
    let p = param[i];
    param[i] = p - decay * p - step_size * m1 / (sqrt(v1) * inv_sqrt_c2 + params.eps);
  }
}
