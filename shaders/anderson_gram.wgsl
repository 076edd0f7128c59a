// Anderson: new row of the Gram matrix. With res_j = fx_j − x_j for ring slot j, computes per
// workgroup g the partial dot products of res_p (the slot written this iteration) with four slots
// at a time: workgroup (g, c) writes partials[c * groups + g] = (Σ res_p·res_4c, …, Σ res_p·res_4c+3)
// over the valid slots j < len (only that row changes each iteration). Four dots per workgroup, not
// one, because each workgroup's reduction costs barriers (dearly on SwiftShader) while the extra
// loads are cheap; anderson_solve.wgsl reads dot j from lane j % 4 of chunk j / 4.
// Bindings: ctrl (read); params {n, stride, groups}; ring = the schedule (lib/anderson_ring.wgsl);
//           x_ring, fx_ring [slots × stride]; partials [ceil(len / 4) × groups] vec4.
// Dispatch: (groups, ceil(len / 4)) of REDUCE_SIZE = 64 threads (lib/reduce.wgsl at 64 threads).

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/anderson_ring.wgsl

const REDUCE_SIZE: u32 = 64u;

struct GramParams { n: u32, stride: u32, groups: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: GramParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> x_ring: array<f32>;
@group(0) @binding(4) var<storage, read> fx_ring: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let entry = ring_entry(ctrl.h.nstep);
  let base_p = entry.x * params.stride;
  let first = group.y * 4u;
  let count = min(4u, entry.y - first); // valid slots of this chunk: j < len
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let res_p = fx_ring[base_p + i] - x_ring[base_p + i];
    for (var k = 0u; k < count; k++) {
      let base_j = (first + k) * params.stride;
      sums[k] += res_p * (fx_ring[base_j + i] - x_ring[base_j + i]);
    }
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.y * params.groups + group.x] = total; }
}
