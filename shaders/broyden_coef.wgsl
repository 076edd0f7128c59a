// Broyden: sums the partial dots of broyden_dots.wgsl (one workgroup) into
//   coef[1 + j] = (a_j, c_j, d_j, 0) = (Δx·U_j, Vᵀ_j·Δg, Vᵀ_j·g', 0)   for the n_old valid columns,
//   coef[1 + n_old] = (Δx·Δg, Δx·g', 0, 0),
//   coef[0] = (col, n_old, n_new, 0) (bitcast u32): the column this update overwrites and the valid
//   counts before and after it.
// Bindings: ctrl (read); params {groups, memory}; partials [(n_old + 1) × groups]; coef [2 + L] vec4.
// Dispatch: (1).

//! include lib/control.wgsl

struct CoefParams { groups: u32, memory: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: CoefParams;
@group(0) @binding(2) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> coef: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (ctrl.h.done != 0u) { return; } // no barrier follows: a plain read, not solve_done()
  let step = ctrl.h.nstep - 1u; // finish.wgsl has already counted this iteration
  let n_old = min(step, params.memory);
  for (var c = lid; c <= n_old; c += 64u) {
    var sum = vec4<f32>(0.0);
    for (var g = 0u; g < params.groups; g++) { sum += partials[c * params.groups + g]; }
    coef[1u + c] = sum;
  }
  if (lid == 0u) {
    let col = step % params.memory;
    let n_new = min(step + 1u, params.memory);
    coef[0] = vec4<f32>(bitcast<f32>(col), bitcast<f32>(n_old), bitcast<f32>(n_new), 0.0);
  }
}
