// Residual partial sums of one evaluation y = f(x), per workgroup:
//   partials[g] = ( Σ (y − x)², Σ y², Σ (2y − x)², 0 )  over the elements workgroup g owns.
// (x, y) is (u, f(u)); finish.wgsl picks the sums that the solver's diffs() needs.
// Bindings: ctrl (done gate, or skip_eval when params.gate_on_eval = 1); params {n, groups, gate_on_eval};
//           x, y [n]; partials [groups] vec4.
// Dispatch: (groups) of REDUCE_SIZE = 64 threads (lib/reduce.wgsl at 64 threads). Element i belongs to
// workgroup (i / REDUCE_SIZE) mod groups: a fixed assignment, so the sums are bit-identical run to run.

//! include lib/control.wgsl
//! include lib/reduce.wgsl
//! include lib/residual_sums.wgsl

const REDUCE_SIZE: u32 = 64u;

struct ResidualParams { n: u32, groups: u32, gate_on_eval: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: ResidualParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> skip_value: u32;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { skip_value = select(ctrl.h.done, ctrl.h.skip_eval, params.gate_on_eval != 0u); }
  if (workgroupUniformLoad(&skip_value) != 0u) { return; }
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    sums += residual_sums(x[i], y[i]);
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.x] = total; }
}
