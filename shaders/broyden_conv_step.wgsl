// One dispatch of a Broyden iteration t ≥ 1 of a layer whose f ends in a 3×3 convolution with its
// chain, f(x) = chain(conv(prefix(x))) (ImplicitLayer.fusedStageTail of kind 'conv', with a
// prefix or alone: WHOLE_LAYER), without the line search: as shaders/broyden_norm_step.wgsl for a norm — the
// convolution's forward (lib/conv3x3.wgsl) storing g' = chain(conv(·)) − x_{t+1} for each thread's
// outputs, then the measurement over them (lib/broyden_stage.wgsl), on the generic measurement's
// workgroups and element assignment; then broyden_decide.wgsl (and the advance kernel without a
// head): k + 2 dispatches per iteration, k + 1 with a head.
// Bindings: lib/broyden_stage.wgsl's 0–6 and 9; weight [3, 3, in_ch, out_ch], bias [out_ch] (7, 8);
//           product_a, the convolution's input (10). params: n, conv_height, conv_width,
//           conv_in, conv_out.
// Dispatch: (groups) of REDUCE_SIZE threads; output e belongs to workgroup (e / REDUCE_SIZE) mod groups.

//! include lib/reduce.wgsl
//! include lib/broyden_stage.wgsl
//! include lib/conv3x3.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> weight: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read> product_a: array<f32>;

fn conv_shape() -> ConvShape { return ConvShape(params.conv_height, params.conv_width, params.conv_in, params.conv_out); }
// WHOLE_LAYER (override): the stage is the whole layer, so its input is x_{t+1} in the state
// (the advance kernel stored it); product_a is then bound to any read-only buffer and never read.
override WHOLE_LAYER: bool = false;

fn conv_x(i: u32) -> f32 {
  if (WHOLE_LAYER) { return state[x_new_index(params.cur, params.stride, i)]; }
  return product_a[i];
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let open = stage_measure_begin(lid);
  if (open.x != 0u) { return; }
  let ncols = open.y;
  let s = ctrl_b.ls_s;
  let n = params.n;
  let stride = count.x * REDUCE_SIZE;
  var residual = vec4<f32>(0.0);
  for (var e = group.x * REDUCE_SIZE + lid; e < n; e += stride) {
    residual += stage_residual(e, epilogue_forward(conv_at(e), e, epi_key()));
  }
  for (var c = 0u; c < ncols; c++) {
    var total = vec4<f32>(0.0);
    for (var e = group.x * REDUCE_SIZE + lid; e < n; e += stride) { total += stage_column_term(e, c, s); }
    stage_store_row(group.x, lid, c, total, false);
  }
  stage_store_row(group.x, lid, ncols, residual, true);
}
