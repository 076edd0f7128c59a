// One Picard iteration of a layer whose f ends in a group or layer normalisation with its chain,
// f(u) = chain(norm(prefix(u))) (a sequential whose last group is a norm, e.g. the MDEQ cell
// `conv2d, add(Qd), groupNorm, relu`; ImplicitLayer.fusedStageTail): the layer's kernels before the
// norm have written prefix(u_t) into `product_a` (or, for a layer that is the norm alone, it is
// u_t); this dispatch is the norm's forward with the iteration's bookkeeping around it, as
// shaders/picard_prefix_step.wgsl is for a product — lib/step.wgsl's step_begin ends iteration
// t − 1, then each workgroup normalises its (row, group) (lib/norm_groups.wgsl), stores
// u_{t+1} = chain(norm(·)) (lib/epilogue.wgsl without dropout) and its residual partial sums of
// (u_t, u_{t+1}). So an iteration of a layer of k kernels is k dispatches (no step kernel).
// Every workgroup of the grid takes part in the step (the commit's share and the partials: those
// past the last (row, group) store zeros).
// Bindings: lib/step.wgsl's 0–7 (lib/step_operands.wgsl: step_candidate = u_t, step_previous =
//           u_{t-1}); gamma, beta [channels]; epi_qd [m, n]; next = u_{t+1} [m, n];
//           product_a, the norm's input [m, n]. params: m rows, and norm_groups, norm_channels,
//           norm_spatial, norm_eps.
// Dispatch: one workgroup per (row, group), m·norm_groups, as a 2-D grid (x, y) read as the
//           linear index y·x_count + x.

//! include lib/reduce.wgsl
//! include lib/step.wgsl
//! include lib/step_operands.wgsl
//! include lib/norm_groups.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> gamma: array<f32>;
@group(0) @binding(9) var<storage, read> beta: array<f32>;
@group(0) @binding(10) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(11) var<storage, read_write> next: array<f32>;
@group(0) @binding(13) var<storage, read> product_a: array<f32>;

fn norm_shape() -> NormShape { return NormShape(params.m, params.norm_groups, params.norm_channels, params.norm_spatial, params.norm_eps); }
fn norm_x(e: u32) -> f32 { return product_a[e]; }

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group_index(wid, count);
  if (step_begin(flat, count.x * count.y, lid)) { return; }
  var sums = vec4<f32>(0.0);
  if (flat < params.m * params.norm_groups) {
    let st = group_stats(flat, lid);
    let m = group_size();
    for (var i = lid; i < m; i += REDUCE_SIZE) {
      let e = element(flat, i);
      let value = epilogue_forward(normalised(e, st), e, epi_key());
      next[e] = value;
      sums += residual_sums(step_candidate[e], value);
    }
  }
  step_end(flat, lid, sums);
}
