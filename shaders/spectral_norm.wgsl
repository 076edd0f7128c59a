// Spectral normalisation (Miyato et al.) of a layer weight seen as a rows × cols row-major matrix A
// (= v, the trainable parameter) whose columns are the output features (linear: [in, out]; conv2d
// HWIO: [9·in, out], the reshaping PyTorch and TorchDEQ use):
//   power_main:    `iterations` power steps on the persistent unit vectors left [rows] and
//                  right [cols]: left = A·right / ‖A·right‖, right = Aᵀ·left / ‖Aᵀ·left‖; then
//                  sigma[0] = leftᵀ·A·right (with 0 iterations: σ of the stored vectors, the
//                  inference-mode update). One workgroup of 64 threads (the reductions run in a
//                  fixed order; 64 rather than 256 because SwiftShader's barriers cost in
//                  proportion to the invocations, docs/swiftshader-costs.md).
//   scale_main:    w[i, c] = g[c] · v[i, c] / σ (g: the target norm, or a learned per-column scale;
//                  σ ≤ 0, a zero matrix, gives w = 0).
//   grad_dot_main: with the power vectors and σ held constant (as PyTorch and TorchDEQ do),
//                  s_c = Σ_i ∂w[i, c] · v[i, c], ∂g[c] = s_c / σ, and dots[0] = D = Σ_c g[c] · s_c.
//                  One workgroup of 64 threads (a fixed order).
//   grad_v_main:   ∂v[i, c] = (g[c] · ∂w[i, c] − (D / σ) · left[i] · right[c]) / σ.
// Bindings: params {rows, cols, iterations}; v [rows·cols]; left [rows]; right [cols]; sigma [1];
//           g [cols]; w / grad_w / grad_v [rows·cols]; grad_g [cols]; dots [1].
// Dispatch: power_main and grad_dot_main (1); scale_main and grad_v_main
//           (min(ceil(rows·cols / 256), max groups)), grid-stride.
//! include lib/reduce.wgsl
//! include lib/grid.wgsl

const REDUCE_SIZE: u32 = 64u;

struct SpectralParams { rows: u32, cols: u32, iterations: u32 }

@group(0) @binding(0) var<uniform> params: SpectralParams;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> left: array<f32>;
@group(0) @binding(3) var<storage, read_write> right: array<f32>;
@group(0) @binding(4) var<storage, read_write> sigma: array<f32>;
@group(0) @binding(5) var<storage, read> g: array<f32>;
@group(0) @binding(6) var<storage, read_write> w: array<f32>;
@group(0) @binding(7) var<storage, read> grad_w: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_v: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad_g: array<f32>;
@group(0) @binding(10) var<storage, read_write> dots: array<f32>;

// (A·right)[i], a fixed-order dot over the columns.
fn a_right(i: u32) -> f32 {
  var s = 0.0;
  for (var c = 0u; c < params.cols; c++) { s += v[i * params.cols + c] * right[c]; }
  return s;
}

// (Aᵀ·left)[c], a fixed-order dot over the rows.
fn at_left(c: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < params.rows; i++) { s += v[i * params.cols + c] * left[i]; }
  return s;
}

fn inverse(norm: f32) -> f32 { return select(0.0, 1.0 / norm, norm > 0.0); }

@compute @workgroup_size(64)
fn power_main(@builtin(local_invocation_index) lid: u32) {
  for (var it = 0u; it < params.iterations; it++) {
    var sum = 0.0;
    for (var i = lid; i < params.rows; i += REDUCE_SIZE) {
      let x = a_right(i);
      left[i] = x;
      sum += x * x;
    }
    // Each thread scales the entries it wrote; the barrier then publishes them to the others.
    let inv_left = inverse(sqrt(workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid).x));
    for (var i = lid; i < params.rows; i += REDUCE_SIZE) { left[i] *= inv_left; }
    storageBarrier();
    sum = 0.0;
    for (var c = lid; c < params.cols; c += REDUCE_SIZE) {
      let x = at_left(c);
      right[c] = x;
      sum += x * x;
    }
    let inv_right = inverse(sqrt(workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid).x));
    for (var c = lid; c < params.cols; c += REDUCE_SIZE) { right[c] *= inv_right; }
    storageBarrier();
  }
  var acc = 0.0;
  for (var c = lid; c < params.cols; c += REDUCE_SIZE) { acc += right[c] * at_left(c); }
  let s = workgroup_sum(vec4<f32>(acc, 0.0, 0.0, 0.0), lid).x;
  if (lid == 0u) { sigma[0] = s; }
}

@compute @workgroup_size(256)
fn scale_main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = params.rows * params.cols;
  let inv = inverse(sigma[0]);
  for (var k = id.x; k < n; k += grid_stride(groups)) {
    w[k] = g[k % params.cols] * v[k] * inv;
  }
}

@compute @workgroup_size(64)
fn grad_dot_main(@builtin(local_invocation_index) lid: u32) {
  let inv = inverse(sigma[0]);
  var sum = 0.0;
  for (var c = lid; c < params.cols; c += REDUCE_SIZE) {
    var s = 0.0;
    for (var i = 0u; i < params.rows; i++) {
      let k = i * params.cols + c;
      s += grad_w[k] * v[k];
    }
    grad_g[c] = s * inv;
    sum += g[c] * s;
  }
  let total = workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid).x;
  if (lid == 0u) { dots[0] = total; }
}

@compute @workgroup_size(256)
fn grad_v_main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = params.rows * params.cols;
  let inv = inverse(sigma[0]);
  let coupling = dots[0] * inv;
  for (var k = id.x; k < n; k += grid_stride(groups)) {
    let c = k % params.cols;
    grad_v[k] = (g[c] * grad_w[k] - coupling * left[k / params.cols] * right[c]) * inv;
  }
}
