// Anderson on a layer whose f ends in a group or layer normalisation with its chain,
// f(x) = chain(norm(prefix(x))) (ImplicitLayer.fusedStageTail, with a prefix or alone (WHOLE_LAYER): e.g. the MDEQ cell
// `conv2d, add(Qd), groupNorm, relu`): the layer's kernels before the norm have written prefix(x_p)
// into `product_a`; this dispatch is the norm's forward with the measurement in its epilogue, as
// shaders/anderson_prefix_step.wgsl is for a product — each workgroup normalises its (row, group)
// (lib/norm_groups.wgsl), stores fx_p = chain(norm(·)) (lib/epilogue.wgsl without dropout) into
// the ring and measures each value as it stores it (lib/anderson_measure.wgsl: residual sums and
// the new Gram row as partials). So an iteration of a layer of k kernels is k + 1 dispatches
// (anderson_step.wgsl, the layer). The grid's spare workgroups store zero partials.
// Bindings: lib/anderson_measure.wgsl's 0–6; gamma, beta [channels] (7, 8); epi_qd [m, n] (9);
//           product_a, the norm's input [m, n] (13). params: m rows, and norm_groups,
//           norm_channels, norm_spatial, norm_eps.
// Dispatch: one workgroup per (row, group), m·norm_groups, as a 2-D grid (x, y) read as the
//           linear index y·x_count + x.

//! include lib/reduce.wgsl
//! include lib/anderson_measure.wgsl
//! include lib/norm_groups.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(13) var<storage, read> product_a: array<f32>;

fn norm_shape() -> NormShape { return NormShape(params.m, params.norm_groups, params.norm_channels, params.norm_spatial, params.norm_eps); }
// WHOLE_LAYER (override): the stage is the whole layer, so its input is the iterate itself, x_p
// in the ring; product_a is then bound to any read-only buffer and never read.
override WHOLE_LAYER: bool = false;

fn norm_x(e: u32) -> f32 {
  if (WHOLE_LAYER) { return x_ring[measure_base() + e]; }
  return product_a[e];
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  let flat = group_index(wid, count);
  if (flat < params.m * params.norm_groups) {
    let st = group_stats(flat, lid);
    let base = measure_base();
    let m = group_size();
    for (var i = lid; i < m; i += REDUCE_SIZE) {
      let e = element(flat, i);
      let value = epilogue_forward(normalised(e, st), e, epi_key());
      fx_ring[base + e] = value;
      measure_element(e, x_ring[base + e], value);
    }
  }
  measure_store(flat, count.x * count.y, lid);
}
