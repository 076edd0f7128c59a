// Residual sum with the injected input: y[i] = x[i] + qd[i]. (Its adjoint is two copies,
// stages/vector.wgsl: x̄ = ȳ and ∂Qd (+)= ȳ.)
// Bindings: gate; params {n}; x [n]; qd [n]; y [n].
// Dispatch: grid_groups(n), 256 threads, grid-stride.

//! include lib/gate.wgsl
//! include lib/grid.wgsl

struct AddParams { n: u32 }

@group(0) @binding(1) var<uniform> params: AddParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u,
        @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  for (var i = id.x; i < params.n; i += grid_stride(groups)) { y[i] = x[i] + qd[i]; }
}
