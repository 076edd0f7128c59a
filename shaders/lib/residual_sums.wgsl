// The residual sums of one element of an evaluation y = f(x): (r², y², (y + r)², 0) with r = y − x,
// from which finish picks the sums its solver's diffs() needs (lib/finish_step.wgsl).

fn residual_sums(x: f32, y: f32) -> vec4<f32> {
  let r = y - x;
  let z = y + r;
  return vec4<f32>(r * r, y * y, z * z, 0.0);
}
