// Anderson on a layer whose f ends in a 3×3 convolution with its chain, f(x) = chain(conv(prefix(x)))
// (ImplicitLayer.fusedStageTail of kind 'conv', with a prefix or alone (WHOLE_LAYER): e.g. `layerNorm, conv2d, add(Qd),
// tanh`): the layer's kernels before the convolution have written prefix(x_p) into `product_a`;
// this dispatch is the convolution's forward (lib/conv3x3.wgsl) storing fx_p = chain(conv(·)) into
// the ring and measuring each value as it stores it (lib/anderson_measure.wgsl), as
// shaders/anderson_norm_measure.wgsl is for a norm, on the generic measurement's workgroups and
// element assignment. So an iteration of a layer of k kernels is k + 1 dispatches
// (anderson_step.wgsl, the layer).
// Bindings: lib/anderson_measure.wgsl's 0–6; weight [3, 3, in_ch, out_ch] (7); bias [out_ch] (8);
//           epi_qd (9); product_a, the convolution's input (13). params: conv_height,
//           conv_width, conv_in, conv_out.
// Dispatch: (groups) of REDUCE_SIZE threads, the generic measurement's.

//! include lib/reduce.wgsl
//! include lib/anderson_measure.wgsl
//! include lib/conv3x3.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> weight: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(13) var<storage, read> product_a: array<f32>;

fn conv_shape() -> ConvShape { return ConvShape(params.conv_height, params.conv_width, params.conv_in, params.conv_out); }
// WHOLE_LAYER (override): the stage is the whole layer, so its input is the iterate itself, x_p
// in the ring; product_a is then bound to any read-only buffer and never read.
override WHOLE_LAYER: bool = false;

fn conv_x(i: u32) -> f32 {
  if (WHOLE_LAYER) { return x_ring[measure_base() + i]; }
  return product_a[i];
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  let base = measure_base();
  for (var e = group.x * REDUCE_SIZE + lid; e < params.state_size; e += count.x * REDUCE_SIZE) {
    let value = epilogue_forward(conv_at(e), e, epi_key());
    fx_ring[base + e] = value;
    measure_element(e, x_ring[base + e], value);
  }
  measure_store(group.x, count.x, lid);
}
