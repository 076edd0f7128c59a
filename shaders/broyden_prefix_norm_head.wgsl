// The first dispatch of a Broyden iteration t ≥ 1 of a layer whose kernels before its final
// product begin with a group or layer normalisation (FusedPrefix.head of kind 'norm', e.g. the
// pre-norm `layerNorm, linear, gelu, linear, add(Qd)`): that normalisation and its chain
// (lib/epilogue.wgsl without dropout), out = chain(norm(x_{t+1})), with x_{t+1} = x_t + update_t
// computed from the rank-one update the decide kernel of iteration t − 1 started
// (lib/broyden_advance.wgsl) where broyden_advance.wgsl would have: each workgroup takes one
// (row, group), as the stage's forward does, and each of its threads first stores the advance
// (U_col, Vᵀ_col, update_t, x_{t+1}) of the elements it later reads, so the statistics and the
// output (lib/norm_groups.wgsl) read x_{t+1} back from the state (each element is stored and read
// by the same thread). Workgroup 0 copies the decide kernel's header (ctrl_b) into ctrl.h, for
// the layer's gate and broyden_prefix_step.wgsl. So the advance kernel goes: an iteration of a
// layer of k kernels is k + 1 dispatches (this one, the layer's kernels after its first,
// broyden_prefix_step.wgsl, broyden_decide.wgsl), as with shaders/broyden_prefix_head.wgsl.
// Bindings: lib/broyden_stage.wgsl's 0–6 and 9; gamma, beta [channels] (7, 8); out [rows,
//           spatial·channels] (10).
// Dispatch: one workgroup per (row, group), rows·groups, as a 2-D grid (x, y) read as the linear
//           index y·x_count + x (extra workgroups return).

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/broyden_stage.wgsl
//! include lib/norm_groups.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
@group(0) @binding(10) var<storage, read_write> out: array<f32>;

fn norm_shape() -> NormShape { return NormShape(params.m, params.norm_groups, params.norm_channels, params.norm_spatial, params.norm_eps); }

// The iteration before t (whose update this kernel finishes); x_{t+1} lands in its x slot.
fn previous() -> u32 { return 1u - params.cur; }

fn norm_x(e: u32) -> f32 { return state[x_index(previous(), params.stride, e)]; }

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) groups: vec3u) {
  if (advance_begin(wid.x == 0u && wid.y == 0u, lid)) { return; }
  let k = group_index(wid, groups);
  if (k >= params.m * params.norm_groups) { return; }
  let m = group_size();
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    advance_store(previous(), e, advance_element(previous(), e));
  }
  let st = group_stats(k, lid);
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    out[e] = epilogue_forward(normalised(e, st), e, epi_key());
  }
}
