// One dispatch of a Broyden iteration t ≥ 1 of a layer whose f ends in a group or layer
// normalisation with its chain, f(x) = chain(norm(prefix(x))) (ImplicitLayer.fusedStageTail of
// kind 'norm', with a prefix or alone (WHOLE_LAYER): e.g. the MDEQ cell `conv2d, add(Qd), groupNorm, relu`), without the
// line search: the advance kernel (or the prefix's head) has stored the advance of iteration
// t − 1 and the layer's kernels before the norm have written prefix(x_{t+1}) into `product_a`;
// this dispatch is the norm's forward (lib/norm_groups.wgsl), each workgroup over its own
// (row, group), storing g' = chain(norm(·)) − x_{t+1}, then the measurement over those elements
// (lib/broyden_stage.wgsl); then broyden_decide.wgsl (and the advance kernel without a head).
// So an iteration of a layer of k kernels is k + 2 dispatches, k + 1 with a head (k + 3 as the
// layer, measure, decide, advance). The grid's spare workgroups store zero partials.
// Bindings: lib/broyden_stage.wgsl's 0–6 and 9; gamma, beta [channels] (7, 8); product_a, the
//           norm's input [rows, spatial·channels] (10).
// Dispatch: one workgroup per (row, group), rows·groups, as a 2-D grid (x, y) read as the linear
//           index y·x_count + x.

//! include lib/reduce.wgsl
//! include lib/broyden_stage.wgsl
//! include lib/norm_groups.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
@group(0) @binding(10) var<storage, read> product_a: array<f32>;

fn norm_shape() -> NormShape { return NormShape(params.m, params.norm_groups, params.norm_channels, params.norm_spatial, params.norm_eps); }
// WHOLE_LAYER (override): the stage is the whole layer, so its input is x_{t+1} in the state
// (the advance kernel stored it); product_a is then bound to any read-only buffer and never read.
override WHOLE_LAYER: bool = false;

fn norm_x(e: u32) -> f32 {
  if (WHOLE_LAYER) { return state[x_new_index(params.cur, params.stride, e)]; }
  return product_a[e];
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group_index(wid, count);
  let open = stage_measure_begin(lid);
  if (open.x != 0u) { return; }
  let ncols = open.y;
  let s = ctrl_b.ls_s;
  let mine = flat < params.m * params.norm_groups;
  let m = group_size();
  var residual = vec4<f32>(0.0);
  if (mine) {
    let st = group_stats(flat, lid);
    for (var i = lid; i < m; i += REDUCE_SIZE) {
      let e = element(flat, i);
      residual += stage_residual(e, epilogue_forward(normalised(e, st), e, epi_key()));
    }
  }
  for (var c = 0u; c < ncols; c++) {
    var total = vec4<f32>(0.0);
    if (mine) {
      for (var i = lid; i < m; i += REDUCE_SIZE) { total += stage_column_term(element(flat, i), c, s); }
    }
    stage_store_row(flat, lid, c, total, false);
  }
  stage_store_row(flat, lid, ncols, residual, true);
}
