// Copies L vectors stored as rows of a padded buffer (src[j * stride + i], i < n) into a dense
// tensor: row-major [L, n] when params.transpose = 0, or [n, L] (dst[i * L + j]) when 1.
// Used once per solve to hand Broyden's factors out as U [dim, L] and Vᵀ [L, dim].
// Bindings: params {n, memory, stride, transpose}; src; dst.
// Dispatch: (min(ceil(n / 64), 65535), L); x strides over n.

struct CopyParams { n: u32, memory: u32, stride: u32, transpose: u32 }

@group(0) @binding(0) var<uniform> params: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) grid: vec3u) {
  let j = id.y;
  for (var i = id.x; i < params.n; i += grid.x * 64u) {
    let value = src[j * params.stride + i];
    if (params.transpose != 0u) { dst[i * params.memory + j] = value; } else { dst[j * params.n + i] = value; }
  }
}
