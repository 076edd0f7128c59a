// Weight normalisation (Salimans & Kingma) of a layer weight seen as a rows × cols row-major matrix
// whose columns are the output features (linear: [in, out]; conv2d HWIO: [9·in, out]):
//   forward:  w[:, c] = g[c] · v[:, c] / ‖v[:, c]‖
//   backward: with ŵ = v[:, c] / ‖v[:, c]‖ and s = ŵ · ∂w[:, c],
//             ∂g[c] = s,   ∂v[:, c] = (g[c] / ‖v[:, c]‖) · (∂w[:, c] − ŵ s)
//   init:     g[c] = ‖v[:, c]‖ (so that w = v at the start)
// A column of zeros gives a zero weight column and zero gradients. One thread per column walks the
// rows in order (a fixed order: deterministic; consecutive threads read consecutive columns).
// Bindings: params {rows, cols}; v [rows·cols]; g [cols]; w / grad_w [rows·cols];
//           grad_v [rows·cols]; grad_g [cols].
// Dispatch: (min(ceil(cols / 256), max groups)), 256 threads, grid-stride over columns.
//! include lib/grid.wgsl

struct WeightNormParams { rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> params: WeightNormParams;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;
@group(0) @binding(4) var<storage, read> grad_w: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_v: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_g: array<f32>;
@group(0) @binding(7) var<storage, read_write> g_out: array<f32>;

fn column_norm(c: u32) -> f32 {
  var sum = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    let x = v[r * params.cols + c];
    sum += x * x;
  }
  return sqrt(sum);
}

@compute @workgroup_size(256)
fn forward_main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  for (var c = id.x; c < params.cols; c += grid_stride(groups)) {
    let norm = column_norm(c);
    let scale = select(0.0, g[c] / norm, norm > 0.0);
    for (var r = 0u; r < params.rows; r++) {
      let k = r * params.cols + c;
      w[k] = v[k] * scale;
    }
  }
}

@compute @workgroup_size(256)
fn backward_main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  for (var c = id.x; c < params.cols; c += grid_stride(groups)) {
    let norm = column_norm(c);
    let inv = select(0.0, 1.0 / norm, norm > 0.0);
    var s = 0.0;
    for (var r = 0u; r < params.rows; r++) {
      let k = r * params.cols + c;
      s += v[k] * grad_w[k];
    }
    s *= inv;
    grad_g[c] = s;
    let scale = g[c] * inv;
    for (var r = 0u; r < params.rows; r++) {
      let k = r * params.cols + c;
      grad_v[k] = scale * (grad_w[k] - v[k] * inv * s);
    }
  }
}

@compute @workgroup_size(256)
fn init_main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  for (var c = id.x; c < params.cols; c += grid_stride(groups)) {
    g_out[c] = column_norm(c);
  }
}
