// Mean squared error and its gradient, for training loops that never leave the GPU:
// entry `grad`:  grad_i = 2 (p_i − t_i) / n, and per-workgroup partial sums of (p_i − t_i)²
// entry `total`: one workgroup sums the partials: loss[0] = Σ (p − t)² / n
// Without a target (params.has_target = 0) the expected values are 0, i.e. the loss is mean(p²).
// Bindings: params {n, groups, has_target}; prediction, expected [n]; grad [n]; partials [groups]; loss [1].
// Dispatch: grad (groups); total (1).

//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 256u;

struct MseParams { n: u32, groups: u32, has_target: u32 }

@group(0) @binding(0) var<uniform> params: MseParams;
@group(0) @binding(1) var<storage, read> prediction: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;

@compute @workgroup_size(256)
fn grad_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  let scale = 2.0 / f32(params.n);
  var sum = 0.0;
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    var diff = prediction[i];
    if (params.has_target != 0u) { diff -= expected[i]; }
    grad[i] = scale * diff;
    sum += diff * diff;
  }
  let total = workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid);
  if (lid == 0u) { partials[group.x] = total; }
}

@compute @workgroup_size(256)
fn total_main(@builtin(local_invocation_index) lid: u32) {
  var sums = vec4<f32>(0.0);
  for (var g = lid; g < params.groups; g += REDUCE_SIZE) { sums += partials[g]; }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { loss[0] = total.x / f32(params.n); }
}
