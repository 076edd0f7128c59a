// Anderson: new row of the Gram matrix. With res_j = fx_j − x_j for ring slot j, computes per
// workgroup g the partial dot products  partials[j * groups + g] = Σ res_p · res_j  for the slot p
// written this iteration and every valid slot j < len (only that row changes each iteration).
// Bindings: ctrl (read); params {n, stride, groups}; ring [t] = (p, len, restart, q);
//           x_ring, fx_ring [slots × stride]; partials [len × groups] vec4 (.x used).
// Dispatch: (groups, len).

struct GramParams { n: u32, stride: u32, groups: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: GramParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> x_ring: array<f32>;
@group(0) @binding(4) var<storage, read> fx_ring: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let p = ring[ctrl.nstep].x;
  let j = group.y;
  let base_p = p * params.stride;
  let base_j = j * params.stride;
  var sum = 0.0;
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    sum += (fx_ring[base_p + i] - x_ring[base_p + i]) * (fx_ring[base_j + i] - x_ring[base_j + i]);
  }
  let total = workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid);
  if (lid == 0u) { partials[j * params.groups + group.x] = total; }
}
