// GDEQ's preconditioning of the incoming gradient with the best Broyden factors:
//   g̃ = −(gᵀ B) = g − (gᵀ U) Vᵀ     over the first `valid` columns
// Entry `dots`:  partials[j * groups + wg] = Σ_i g_i · U[i, j]   (U dense [dim, L], row-major)
// Entry `apply`: every workgroup sums the partials (same fixed order everywhere), then
//                out_i = g_i − Σ_j a_j · Vᵀ[j, i]               (Vᵀ dense [L, dim])
// Bindings: params {n, memory, valid, groups}; g [n]; us [n × L]; vts [L × n]; partials; out [n].
// Dispatch: dots (groups, valid); apply (groups).

//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 256u;

const MAX_COLUMNS: u32 = 1024u;
// The factors' columns (at most MAX_COLUMNS; `valid` ≤ COLUMNS): the apply entry's coefficients
// take no more workgroup memory than they need, which on SwiftShader every dispatch pays for in
// proportion to its declared size (docs/swiftshader-costs.md). src/backprop/gdeq.ts sets it.
override COLUMNS: u32 = MAX_COLUMNS;

struct GdeqParams { n: u32, memory: u32, valid: u32, groups: u32 }

@group(0) @binding(0) var<uniform> params: GdeqParams;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> us: array<f32>;
@group(0) @binding(3) var<storage, read> vts: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> coefficients: array<f32, COLUMNS>;

@compute @workgroup_size(256)
fn dots(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  let j = group.y;
  var sum = 0.0;
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    sum += g[i] * us[i * params.memory + j];
  }
  let total = workgroup_sum(vec4<f32>(sum, 0.0, 0.0, 0.0), lid);
  if (lid == 0u) { partials[j * params.groups + group.x] = total; }
}

@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var j = lid; j < params.valid; j += REDUCE_SIZE) {
    var a = 0.0;
    for (var wg = 0u; wg < params.groups; wg++) { a += partials[j * params.groups + wg].x; }
    coefficients[j] = a;
  }
  workgroupBarrier();
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    var value = g[i];
    for (var j = 0u; j < params.valid; j++) { value -= coefficients[j] * vts[j * params.n + i]; }
    out[i] = value;
  }
}
