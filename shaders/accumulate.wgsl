// Elementwise y ← α·y + β·x. With α = 0, y is overwritten and its old contents (possibly NaN
// from a reused buffer) are never read. GradientAccumulator uses (1, scale) to add a gradient
// set and (0, 1/count) to write the mean.
// Bindings: params {alpha, beta}; x [n] (read); y [n] (read_write). n = arrayLength(y): bind
//           regions of exactly n floats.
// Dispatch: (min(ceil(n / 256), max groups)), 256 threads, grid-stride.

struct AxpbyParams { alpha: f32, beta: f32 }

@group(0) @binding(0) var<uniform> params: AxpbyParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = arrayLength(&y);
  let keep = params.alpha != 0.0;
  for (var i = id.x; i < n; i += groups.x * 256u) {
    var value = params.beta * x[i];
    if (keep) { value += params.alpha * y[i]; }
    y[i] = value;
  }
}
