// Stochastic gradient descent (PyTorch semantics, dampening 0), one dispatch per parameter tensor:
//   d = g + wd·p                       (L2 weight decay, coupled into the gradient)
//   main:      p ← p − lr·d
//   momentum:  buf ← μ·buf + d,  p ← p − lr·buf   (buf starts at 0, so the first buf is d)
// Bindings: params {lr, momentum, weight_decay}; param [n] (read_write); grad [n] (read);
//           buf [n] (read_write, momentum only). n = arrayLength(param): bind exactly n floats.
// Dispatch: (min(ceil(n / 256), max groups)), 256 threads, grid-stride.

struct SgdParams { lr: f32, momentum: f32, weight_decay: f32 }

@group(0) @binding(0) var<uniform> params: SgdParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = arrayLength(&param);
  for (var i = id.x; i < n; i += groups.x * 256u) {
    let p = param[i];
    param[i] = p - params.lr * (grad[i] + params.weight_decay * p);
  }
}

@compute @workgroup_size(256)
fn momentum(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = arrayLength(&param);
  for (var i = id.x; i < n; i += groups.x * 256u) {
    let p = param[i];
    let b = params.momentum * buf[i] + grad[i] + params.weight_decay * p;
    buf[i] = b;
    param[i] = p - params.lr * b;
  }
}
