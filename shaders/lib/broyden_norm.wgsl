// The uniform and bindings 0–9 of Broyden's kernels around a group or layer normalisation:
// shaders/broyden_prefix_norm_head.wgsl (the norm first: it on the advance) and
// shaders/broyden_norm_step.wgsl (the norm last: it measuring). Each adds its own buffer at 10 and
// supplies `fn norm_x(e: u32) -> f32` (lib/norm_groups.wgsl, which it includes after this).

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl

struct BroydenNormParams {
  rank_parts: u32,  // entries of the decide kernel's rank-one row
  rows: u32,        // entries per row of sums
  stride: u32,
  cur: u32,         // parity of iteration t
  memory: u32,
  thread_sums: u32, // 1: the rows of partial sums hold one entry per thread (lib/row_sums.wgsl)
  batch: u32,       // the normalisation's rows, groups, channels, spatial, eps
  groups: u32,
  channels: u32,
  spatial: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read_write> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: BroydenNormParams;
@group(0) @binding(3) var<storage, read_write> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
@group(0) @binding(9) var<storage, read> epi_qd: array<f32>;

fn norm_shape() -> NormShape { return NormShape(params.batch, params.groups, params.channels, params.spatial, params.eps); }
