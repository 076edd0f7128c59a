// Tanh implicit block, split-K forward, first pass (for few rows: a small batch leaves the tiled
// kernel with too few workgroups to fill a GPU, and each would walk all d rows of w):
//   partial[s, r, j] = Σ_{k in chunk s} u[r, k] · w[k, j]      chunk s = [s·chunk, min(d, (s+1)·chunk))
// Every thread of a workgroup reads the same u[r, k] (a broadcast) and its own column of w
// (coalesced), for ROWS rows at once; no workgroup memory, no barriers.
// Bindings: gate; params {d, batch, chunk}; u [batch, d]; w [d, d]; partial [splits, batch, d].
// Dispatch: (ceil(d / 64), ceil(batch / 4), splits). block_combine.wgsl finishes.

//! include lib/gate.wgsl

const ROWS: u32 = 4u;

struct PartialParams { d: u32, batch: u32, chunk: u32 }

@group(0) @binding(1) var<uniform> params: PartialParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let d = params.d;
  let j = group.x * 64u + lid;
  if (j >= d) { return; }
  let r0 = group.y * ROWS;
  let last = params.batch - 1u;
  // Rows past the batch re-read the last row; their sums are not written.
  let b0 = r0 * d;
  let b1 = min(r0 + 1u, last) * d;
  let b2 = min(r0 + 2u, last) * d;
  let b3 = min(r0 + 3u, last) * d;
  let k_start = group.z * params.chunk;
  let k_end = min(d, k_start + params.chunk);
  var acc = vec4<f32>(0.0);
  for (var k = k_start; k < k_end; k++) {
    acc += vec4<f32>(u[b0 + k], u[b1 + k], u[b2 + k], u[b3 + k]) * w[k * d + j];
  }
  let n = params.batch * d;
  for (var t = 0u; t < ROWS; t++) {
    let r = r0 + t;
    if (r < params.batch) { partial[group.z * n + r * d + j] = acc[t]; }
  }
}
