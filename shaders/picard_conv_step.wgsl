// One Picard iteration of a layer whose f ends in a 3×3 convolution with its chain,
// f(u) = chain(conv(prefix(u))) (a sequential whose last group is a conv2d, e.g.
// `layerNorm, conv2d, add(Qd), tanh`, or a conv2d group alone; ImplicitLayer.fusedStageTail): the
// layer's kernels before the convolution have written prefix(u_t) into `product_a` (for a layer
// that is the convolution alone, it is u_t); this dispatch is the convolution's forward
// (lib/conv3x3.wgsl) with the iteration's bookkeeping around it, as shaders/picard_norm_step.wgsl
// is for a norm — lib/step.wgsl's step_begin ends iteration t − 1, then each thread stores
// u_{t+1} = chain(conv(·)) (lib/epilogue.wgsl without dropout) for its outputs and sums their
// residual with u_t. So an iteration of a layer of k kernels is k dispatches (no step kernel).
// Bindings: lib/step.wgsl's 0–7 (lib/step_operands.wgsl: step_candidate = u_t, step_previous =
//           u_{t-1}); weight [3, 3, in_ch, out_ch]; bias [out_ch]; epi_qd [state]; next = u_{t+1};
//           product_a, the convolution's input. params: conv_height, conv_width, conv_in, conv_out.
// Dispatch: (groups) of REDUCE_SIZE threads, the generic step's; output e belongs to workgroup
//           (e / REDUCE_SIZE) mod groups, as that step's elements do.

//! include lib/reduce.wgsl
//! include lib/step.wgsl
//! include lib/step_operands.wgsl
//! include lib/conv3x3.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> weight: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(11) var<storage, read_write> next: array<f32>;
@group(0) @binding(13) var<storage, read> product_a: array<f32>;

fn conv_shape() -> ConvShape { return ConvShape(params.conv_height, params.conv_width, params.conv_in, params.conv_out); }
fn conv_x(i: u32) -> f32 { return product_a[i]; }

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (step_begin(group.x, count.x, lid)) { return; }
  var sums = vec4<f32>(0.0);
  for (var e = group.x * REDUCE_SIZE + lid; e < params.state_size; e += count.x * REDUCE_SIZE) {
    let value = epilogue_forward(conv_at(e), e, epi_key());
    next[e] = value;
    sums += residual_sums(step_candidate[e], value);
  }
  step_end(group.x, lid, sums);
}
