// Group normalisation's statistics, one workgroup per (row, group): the body of
// shaders/stages/norm.wgsl (the groupNorm / layerNorm stage) and of
// shaders/broyden_prefix_norm_head.wgsl (the same forward on Broyden's next point, computed on the
// fly). Rows are [spatial, channels] row-major; group g holds channels [g·cg, (g+1)·cg),
// cg = channels / groups, and its m = spatial·cg elements share one mean μ and biased variance σ²
// (two passes, so no cancellation), r = 1/√(σ² + eps).
// The includer supplies `fn norm_shape() -> NormShape`, `fn norm_x(e: u32) -> f32` (element e of
// the input, [rows, spatial·channels]), the bindings `gamma` and `beta` ([channels]) and
// REDUCE_SIZE, and includes lib/reduce.wgsl.

struct NormShape { rows: u32, groups: u32, channels: u32, spatial: u32, eps: f32 }

// The workgroup's linear index in a 2-D grid (x, y): the (row, group) it takes, k = row·groups + g.
fn group_index(wid: vec3u, groups: vec3u) -> u32 { return wid.y * groups.x + wid.x; }

fn group_channels() -> u32 {
  let shape = norm_shape();
  return shape.channels / shape.groups;
}

// Elements per group.
fn group_size() -> u32 { return norm_shape().spatial * group_channels(); }

// Index in the input of element i of group k = row·groups + g (i = s·cg + channel within the group).
fn element(k: u32, i: u32) -> u32 {
  let shape = norm_shape();
  let cg = group_channels();
  let row = k / shape.groups;
  let g = k % shape.groups;
  return (row * shape.spatial + i / cg) * shape.channels + g * cg + i % cg;
}

// (μ, r) of group k; every thread of the workgroup gets them.
fn group_stats(k: u32, lid: u32) -> vec2<f32> {
  let m = group_size();
  var sum = 0.0;
  for (var i = lid; i < m; i += REDUCE_SIZE) { sum += norm_x(element(k, i)); }
  let mean = workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid).x / f32(m);
  var sq = 0.0;
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let d = norm_x(element(k, i)) - mean;
    sq += d * d;
  }
  let variance = workgroup_sum(vec4<f32>(sq, 0.0, 0.0, 0.0), lid).x / f32(m);
  return vec2<f32>(mean, inverseSqrt(variance + norm_shape().eps));
}

// The normalisation's output, before any chain, at element e of a group with statistics st = (μ, r).
fn normalised(e: u32, st: vec2<f32>) -> f32 {
  let c = e % norm_shape().channels;
  return (norm_x(e) - st.x) * st.y * gamma[c] + beta[c];
}
