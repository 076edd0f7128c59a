// Anderson: the small regularised solve, in one workgroup. Completes row/column p of the Gram
// matrix G from the partial dots, then solves (G + reg·I) α = 1 over the valid slots (the
// invalid ones are decoupled: zero rows, right side 0, so their α is 0), by Gaussian elimination
// with partial pivoting, and normalises α /= (Σα + 1e-12). On a restart slot 0 takes slot p's
// place, so G[0][0] <- G[p][p].
// When the residuals are collinear (a scalar state, constant inputs) G + reg·I is singular in
// float32 — reg = 1e-8 is below half an ulp of G's diagonal — and a pivot comes out 0 or NaN, where
// float64 would still solve it. Then α falls back to the newest entry alone (a plain fixed-point
// step) instead of ending the solve with NaN.
// Bindings: ctrl (read); params {groups, slots, reg}; ring = the schedule (lib/anderson_ring.wgsl);
//           partials [ceil(len / 4) × groups] vec4 (dot j in lane j % 4); gram [slots × slots]
//           (persists across iterations); alpha [slots].
// Dispatch: (1).

//! include lib/control.wgsl
//! include lib/anderson_ring.wgsl

const MAX_SLOTS: u32 = 33u;

struct SolveParams { groups: u32, slots: u32, reg: f32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: SolveParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> gram: array<f32>;
@group(0) @binding(5) var<storage, read_write> alpha: array<f32>;

var<workgroup> system: array<f32, 1089>; // MAX_SLOTS², row-major
var<workgroup> rhs: array<f32, 33>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let entry = ring_entry(ctrl.h.nstep);
  let p = entry.x;
  let len = entry.y;
  let m = params.slots;
  for (var j = lid; j < len; j += 64u) {
    var dot = 0.0;
    let chunk = (j / 4u) * params.groups; // anderson_gram.wgsl: four slots per vec4
    for (var g = 0u; g < params.groups; g++) { dot += partials[chunk + g][j % 4u]; }
    gram[p * m + j] = dot;
    gram[j * m + p] = dot;
  }
  storageBarrier();
  if (lid != 0u) { return; }

  for (var r = 0u; r < len; r++) {
    for (var c = 0u; c < len; c++) {
      system[r * MAX_SLOTS + c] = gram[r * m + c] + select(0.0, params.reg, r == c);
    }
    rhs[r] = 1.0;
  }
  // Gaussian elimination with partial pivoting.
  for (var k = 0u; k < len; k++) {
    var pivot = k;
    for (var r = k + 1u; r < len; r++) {
      if (abs(system[r * MAX_SLOTS + k]) > abs(system[pivot * MAX_SLOTS + k])) { pivot = r; }
    }
    if (pivot != k) {
      for (var c = 0u; c < len; c++) {
        let tmp = system[k * MAX_SLOTS + c];
        system[k * MAX_SLOTS + c] = system[pivot * MAX_SLOTS + c];
        system[pivot * MAX_SLOTS + c] = tmp;
      }
      let tmp = rhs[k];
      rhs[k] = rhs[pivot];
      rhs[pivot] = tmp;
    }
    let diagonal = system[k * MAX_SLOTS + k];
    for (var r = k + 1u; r < len; r++) {
      let factor = system[r * MAX_SLOTS + k] / diagonal;
      for (var c = k; c < len; c++) { system[r * MAX_SLOTS + c] -= factor * system[k * MAX_SLOTS + c]; }
      rhs[r] -= factor * rhs[k];
    }
  }
  var total = 0.0;
  var singular = false;
  for (var kk = 0u; kk < len; kk++) {
    let k = len - 1u - kk;
    var value = rhs[k];
    for (var c = k + 1u; c < len; c++) { value -= system[k * MAX_SLOTS + c] * rhs[c]; }
    let pivot = system[k * MAX_SLOTS + k];
    singular = singular || pivot == 0.0 || !is_finite(pivot);
    rhs[k] = value / pivot;
    total += rhs[k];
  }
  let normalised = total + 1e-12;
  singular = singular || !is_finite(normalised) || normalised == 0.0;
  for (var j = 0u; j < m; j++) {
    var a = select(0.0, rhs[j] / normalised, j < len);
    if (singular) { a = select(0.0, 1.0, j == p); }
    alpha[j] = a;
  }
  if (entry.z != 0u) { gram[0] = gram[p * m + p]; }
}
