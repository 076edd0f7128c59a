// Non-finite check of a tensor (backward's `checkFinite`): flag = 1 when any of x[0 .. n) is NaN
// or ±Infinity (exponent bits all ones, tested on the bits so no compiler can fold it away);
// flag is cleared by the caller beforehand and otherwise left alone. Only 4 bytes come back.
// Bindings: params {n}; x [≥ n] (read); flag (atomic u32).
// Dispatch: (min(ceil(n / 256), max groups)), 256 threads, grid-stride.

struct NonFiniteParams { n: u32 }

@group(0) @binding(0) var<uniform> params: NonFiniteParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> flag: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  var found = false;
  for (var i = id.x; i < params.n; i += groups.x * 256u) {
    found = found || (bitcast<u32>(x[i]) & 0x7f800000u) == 0x7f800000u;
  }
  if (found) { atomicOr(&flag, 1u); }
}
