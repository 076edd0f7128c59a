// Broyden's Armijo line search, one decision per evaluation, in one workgroup (the generic path:
// after each trial's evaluation and residual sums). It sums φ = ‖g(x + s·update)‖² from the
// residual partials and advances the search on ctrl.h by lib/line_search.wgsl's rules (the dense
// trials of shaders/broyden_dense_step.wgsl run the same function in their prologue).
// It runs (is not idle) exactly after the trials that were evaluated.
// Bindings: ctrl (read_write); params {groups}; partials [groups] vec4 (.x = Σ (y − x)²).
// Dispatch: (1).

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/line_search.wgsl

const REDUCE_SIZE: u32 = 256u;

struct LineSearchParams { groups: u32 }

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<uniform> params: LineSearchParams;
@group(0) @binding(2) var<storage, read> partials: array<vec4<f32>>;

var<workgroup> idle: u32;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { idle = select(1u, 0u, line_search_open(ctrl.h)); }
  if (workgroupUniformLoad(&idle) != 0u) { return; }
  var sums = vec4<f32>(0.0);
  for (var g = lid; g < params.groups; g += REDUCE_SIZE) { sums += partials[g]; }
  let phi = workgroup_sum(sums, lid).x;
  if (lid == 0u) { ctrl.h = line_search_decide(ctrl.h, phi); }
}
