// Broyden: the accepted point and its residual, with residual partial sums.
//   g = fx − x_eval          (the residual of the last evaluation)
//   x' = x + ls_s·update     when params.apply_step = 1 (line search; may differ from x_eval
//                            after the step was clamped, the original's quirk), else x' = x_eval
//   partials[g] = ( Σ g², Σ (g + x')², 0, 0 )  → diffs(x', g) in finish.wgsl
// x' overwrites x_eval in place; g goes to gx_new.
// Bindings: ctrl (read); params {n, groups, apply_step}; x, update, fx [n]; x_eval, gx_new [n] (rw);
//           partials [groups] vec4.
// Dispatch: (groups).

struct FinalizeParams { n: u32, groups: u32, apply_step: u32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: FinalizeParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> update: array<f32>;
@group(0) @binding(4) var<storage, read> fx: array<f32>;
@group(0) @binding(5) var<storage, read_write> x_eval: array<f32>;
@group(0) @binding(6) var<storage, read_write> gx_new: array<f32>;
@group(0) @binding(7) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let s = ctrl.ls_s;
  var sums = vec4<f32>(0.0);
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let evaluated_at = x_eval[i];
    let g = fx[i] - evaluated_at;
    var accepted = evaluated_at;
    if (params.apply_step != 0u) { accepted = x[i] + s * update[i]; }
    x_eval[i] = accepted;
    gx_new[i] = g;
    let z = g + accepted;
    sums += vec4<f32>(g * g, z * z, 0.0, 0.0);
  }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.x] = total; }
}
