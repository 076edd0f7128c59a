// Broyden's Armijo line search, one decision per evaluation, in one workgroup. After the
// evaluation at ctrl.h.ls_eval_s it sums φ = ‖g(x + s·update)‖² from the residual partials and
// advances the search (φ0 = ctrl.h.phi0, φ'0 = −φ0, c1 = 1e-4, amin = 1e-2):
//   phase 0 (s = 1):  accept if φ ≤ φ0 + c1·φ'0; else the quadratic step s1 = −φ'0 / (2(φ − φ0 − φ'0))
//   phase 1 (s1, not tested): halve while s > amin
//   phase 2 (halving): accept test at the unclamped s_next, then s = max(amin, s_next)
// The original's cubic step is always replaced by s/2 (its two safeguards cover every finite
// value), so halving is exact. When finished it closes the evaluation gate (skip_eval = 1).
// It runs (is not idle) exactly after the trials that were evaluated, and advances ctrl.h.eval_index
// past each, so every trial of a stochastic layer gets its own noise (finish.wgsl adds nothing then).
// Bindings: ctrl (read_write); params {groups}; partials [groups] vec4 (.x = Σ (y − x)²).
// Dispatch: (1).

//! include lib/control.wgsl
//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 256u;

const C1: f32 = 1e-4;
const AMIN: f32 = 1e-2;

struct LineSearchParams { groups: u32 }

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: LineSearchParams;
@group(0) @binding(2) var<storage, read> partials: array<vec4<f32>>;

var<workgroup> idle: u32;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { idle = select(0u, 1u, ctrl.h.done != 0u || ctrl.h.ls_phase == LS_FINISHED); }
  if (workgroupUniformLoad(&idle) != 0u) { return; }
  var sums = vec4<f32>(0.0);
  for (var g = lid; g < params.groups; g += REDUCE_SIZE) { sums += partials[g]; }
  let phi = workgroup_sum(sums, lid).x;
  if (lid != 0u) { return; }

  ctrl.h.eval_index += 1u;
  let phi0 = ctrl.h.phi0;
  let slope0 = -phi0;
  switch ctrl.h.ls_phase {
    case 0u: {
      if (phi <= phi0 + C1 * slope0) {
        ctrl.h.ls_phase = LS_FINISHED;
      } else {
        let s1 = -slope0 / (2.0 * (phi - phi0 - slope0));
        ctrl.h.ls_s = s1;
        ctrl.h.ls_eval_s = s1;
        ctrl.h.ls_extra = 1u;
        ctrl.h.ls_phase = 1u;
      }
    }
    case 1u: {
      if (ctrl.h.ls_s > AMIN) {
        ctrl.h.ls_eval_s = ctrl.h.ls_s * 0.5;
        ctrl.h.ls_extra += 1u;
        ctrl.h.ls_phase = 2u;
      } else {
        ctrl.h.ls_phase = LS_FINISHED;
      }
    }
    default: {
      let s_next = ctrl.h.ls_eval_s;
      let accepted = phi <= phi0 + C1 * s_next * slope0;
      let s = max(AMIN, s_next);
      ctrl.h.ls_s = s;
      if (accepted || !(s > AMIN)) {
        ctrl.h.ls_phase = LS_FINISHED;
      } else {
        ctrl.h.ls_eval_s = s * 0.5;
        ctrl.h.ls_extra += 1u;
      }
    }
  }
  ctrl.h.skip_eval = select(0u, 1u, ctrl.h.ls_phase == LS_FINISHED);
}
