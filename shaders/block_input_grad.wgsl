// Tanh implicit block adjoint, input gradient (J_fᵀ ḡ):
//   du[r, k] = Σ_j delta[r, j] · w[k, j] + add[r, k]      (δ wᵀ, plus an optional vector)
// `add` lets the IFT adjoint system λ ↦ J_fᵀ λ + ḡ reuse this kernel (add = ḡ); with
// params.use_add = 0 it is not read.
// 16 × 16 tiles of δ and w are staged in workgroup memory (w read along its rows, coalesced).
// Bindings: gate; params {d, batch, use_add}; delta [batch, d]; w [d, d]; add [batch, d]; du [batch, d].
// Dispatch: (ceil(d / 16), ceil(batch / 16)).

//! include lib/gate.wgsl

const TILE: u32 = 16u;

struct InputGradParams { d: u32, batch: u32, use_add: u32 }

@group(0) @binding(1) var<uniform> params: InputGradParams;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> add: array<f32>;
@group(0) @binding(5) var<storage, read_write> du: array<f32>;

var<workgroup> delta_tile: array<f32, 256>; // [r][j]
var<workgroup> w_tile: array<f32, 256>;     // [k][j]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_id) local: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  if (gate_closed(lid)) { return; }
  let d = params.d;
  let k = group.x * TILE + local.x;
  let r = group.y * TILE + local.y;
  let k_row = group.x * TILE + local.y; // row of w this thread stages
  var acc = 0.0;
  for (var j0 = 0u; j0 < d; j0 += TILE) {
    let j = j0 + local.x;
    var dv = 0.0;
    if (r < params.batch && j < d) { dv = delta[r * d + j]; }
    delta_tile[local.y * TILE + local.x] = dv;
    var wv = 0.0;
    if (k_row < d && j < d) { wv = w[k_row * d + j]; }
    w_tile[local.y * TILE + local.x] = wv;
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      acc += delta_tile[local.y * TILE + jj] * w_tile[local.x * TILE + jj];
    }
    workgroupBarrier();
  }
  if (r < params.batch && k < d) {
    let i = r * d + k;
    var value = acc;
    if (params.use_add != 0u) { value += add[i]; }
    du[i] = value;
  }
}
