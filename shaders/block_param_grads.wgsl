// Tanh implicit block adjoint, parameter gradients from delta = ḡ ⊙ (1 − y²):
//   dw[k, j] = Σ_r u[r, k] · delta[r, j]        (uᵀ δ)
//   db[j]    = Σ_r delta[r, j]                   (written by the workgroups of row k = 0)
// A fixed summation order over r: deterministic.
// Bindings: gate; params {d, batch}; u, delta [batch, d]; dw [d, d]; db [d].
// Dispatch: (ceil(d / 64), d): workgroup (x, k) computes dw[k, 64x .. 64x + 63].

//! include lib/gate.wgsl

struct GradParams { d: u32, batch: u32 }

@group(0) @binding(1) var<uniform> params: GradParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let d = params.d;
  let j = group.x * 64u + lid;
  let k = group.y;
  if (j >= d) { return; }
  var acc = 0.0;
  var bias = 0.0;
  for (var r = 0u; r < params.batch; r++) {
    let dl = delta[r * d + j];
    acc += u[r * d + k] * dl;
    bias += dl;
  }
  dw[k * d + j] = acc;
  if (k == 0u) { db[j] = bias; }
}
