// Vector moves between stages of a sequential layer:
// entry `copy_main`:  dst[i] = src[i], or dst[i] += src[i] when params.accumulate is 1
//                     (the residual sum's adjoint, ∂Qd summed over the stages that read Qd, and
//                      the IFT system's `+ ḡ`)
// entry `zero_main`:  zero[i] = 0 (∂Qd of a layer that never reads Qd)
// Bindings: gate; params {n, accumulate}; copy: src [n], dst [n]; zero: zero [n].
// Dispatch: grid_groups(n), 256 threads, grid-stride.

//! include lib/gate.wgsl
//! include lib/grid.wgsl

struct VectorParams { n: u32, accumulate: u32 }

@group(0) @binding(1) var<uniform> params: VectorParams;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> zero: array<f32>;

@compute @workgroup_size(256)
fn copy_main(@builtin(global_invocation_id) id: vec3u,
             @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let accumulate = params.accumulate != 0u;
  for (var i = id.x; i < params.n; i += grid_stride(groups)) {
    var value = src[i];
    if (accumulate) { value += dst[i]; }
    dst[i] = value;
  }
}

@compute @workgroup_size(256)
fn zero_main(@builtin(global_invocation_id) id: vec3u,
             @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  for (var i = id.x; i < params.n; i += grid_stride(groups)) { zero[i] = 0.0; }
}
