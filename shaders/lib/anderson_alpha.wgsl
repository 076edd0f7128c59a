// Anderson's small regularised solve, for one thread: (G + reg·I) α = 1 over the valid slots
// j < len (the invalid ones are decoupled: zero rows, right side 0, so their α is 0), by Gaussian
// elimination with partial pivoting, then α /= (Σα + 1e-12), into alpha_value[0..m).
// When the residuals are collinear (a scalar state, constant inputs) G + reg·I is singular in
// float32 — reg = 1e-8 is below half an ulp of G's diagonal — and a pivot comes out 0 or NaN, where
// float64 would still solve it. Then α falls back to the newest entry p alone (a plain fixed-point
// step) instead of ending the solve with NaN.
// The includer supplies fn anderson_gram_at(r: u32, c: u32) -> f32, the Gram matrix G[r][c].
// Used by anderson_solve.wgsl (one workgroup) and anderson_step.wgsl (every workgroup the same).
// The workgroup arrays hold ALPHA_SLOTS slots, the solve's (src/solvers/anderson.ts compiles each
// window's variant): a workgroup array costs every dispatch in proportion to its declared size on
// SwiftShader, whether or not the kernel touches it (docs/swiftshader-costs.md), and MAX_SLOTS²
// floats there cost more than the rest of an Anderson step.

//! include lib/control.wgsl
//! include lib/anderson_ring.wgsl

// The solve's slots (windowSize + 1, at most MAX_SLOTS): the most `m` and `len` may be.
override ALPHA_SLOTS: u32 = MAX_SLOTS;

var<workgroup> system: array<f32, ALPHA_SLOTS * ALPHA_SLOTS>; // row-major
var<workgroup> rhs: array<f32, ALPHA_SLOTS>;
var<workgroup> alpha_value: array<f32, ALPHA_SLOTS>;

fn anderson_alpha(p: u32, len: u32, m: u32, reg: f32) {
  for (var r = 0u; r < len; r++) {
    for (var c = 0u; c < len; c++) {
      system[r * ALPHA_SLOTS + c] = anderson_gram_at(r, c) + select(0.0, reg, r == c);
    }
    rhs[r] = 1.0;
  }
  // Gaussian elimination with partial pivoting.
  for (var k = 0u; k < len; k++) {
    var pivot = k;
    for (var r = k + 1u; r < len; r++) {
      if (abs(system[r * ALPHA_SLOTS + k]) > abs(system[pivot * ALPHA_SLOTS + k])) { pivot = r; }
    }
    if (pivot != k) {
      for (var c = 0u; c < len; c++) {
        let tmp = system[k * ALPHA_SLOTS + c];
        system[k * ALPHA_SLOTS + c] = system[pivot * ALPHA_SLOTS + c];
        system[pivot * ALPHA_SLOTS + c] = tmp;
      }
      let tmp = rhs[k];
      rhs[k] = rhs[pivot];
      rhs[pivot] = tmp;
    }
    let diagonal = system[k * ALPHA_SLOTS + k];
    for (var r = k + 1u; r < len; r++) {
      let factor = system[r * ALPHA_SLOTS + k] / diagonal;
      for (var c = k; c < len; c++) { system[r * ALPHA_SLOTS + c] -= factor * system[k * ALPHA_SLOTS + c]; }
      rhs[r] -= factor * rhs[k];
    }
  }
  var total = 0.0;
  var singular = false;
  for (var kk = 0u; kk < len; kk++) {
    let k = len - 1u - kk;
    var value = rhs[k];
    for (var c = k + 1u; c < len; c++) { value -= system[k * ALPHA_SLOTS + c] * rhs[c]; }
    let pivot = system[k * ALPHA_SLOTS + k];
    singular = singular || pivot == 0.0 || !is_finite(pivot);
    rhs[k] = value / pivot;
    total += rhs[k];
  }
  let normalised = total + 1e-12;
  singular = singular || !is_finite(normalised) || normalised == 0.0;
  for (var j = 0u; j < m; j++) {
    var a = select(0.0, rhs[j] / normalised, j < len);
    if (singular) { a = select(0.0, 1.0, j == p); }
    alpha_value[j] = a;
  }
}
