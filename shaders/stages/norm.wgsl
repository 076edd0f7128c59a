// Group normalisation over NHWC rows, and layer normalisation as its special case (groups = 1,
// channels = row size, spatial = 1). Each of `rows` rows is [spatial, channels] row-major; group g
// holds channels [g·cg, (g+1)·cg), cg = channels / groups, and its m = spatial·cg elements share
// one mean μ and biased variance σ² (lib/norm_groups.wgsl), r = 1/√(σ² + eps):
// entry `forward_main`:     y = x̂·gamma[c] + beta[c],  x̂ = (x − μ)·r
// entry `stats_main`:       stats[2k], stats[2k+1] = μ, r of (row, group) k = row·groups + g
// entry `input_grad_main`:  g_in = r·(d − mean(d) − x̂·mean(d·x̂)), d = g_out·gamma[c] (means
//                           over the group); also writes stats like stats_main
// entry `gamma_grad_main`:  g_gamma[c] = Σ_{row, s} g_out·x̂   (x̂ from stats)
// entry `beta_grad_main`:   g_beta[c]  = Σ_{row, s} g_out
// entry `delta_main`:       (delta, dqd) = the epilogue chain walked back from g_out at the
//                           recomputed normalised value (lib/epilogue.wgsl), dqd written or added
//                           by params.qd_mode (1, 2; 0: not written)
// The forward applies the epilogue hook: the elementwise stages a sequential layer fuses after the
// normalisation (add(Qd), activations, dropout; EPI_OP* override constants, none by default), so
// an MDEQ cell's `groupNorm → relu` is one kernel. With a chain, the adjoint entries read delta
// as their g_out.
// All sums are per-thread strided partial sums added by lib/reduce.wgsl's fixed tree: deterministic.
// 64 threads (REDUCE_SIZE), since a barrier costs in proportion to the threads of a workgroup on
// SwiftShader.
// Bindings: gate; params {rows, groups, channels, spatial, eps, qd_mode, dropout members};
//           forward: x, gamma, beta, epi_qd, y; stats: x, stats; input_grad: x, gamma, stats,
//           g_out, g_in; gamma_grad: x, stats, g_out, g_gamma; beta_grad: g_out, g_beta;
//           delta: x, gamma, beta, epi_qd, g_out, delta, dqd. stats is [rows·groups, 2].
// Dispatch, REDUCE_SIZE threads, as a 2-D grid (x, y) read as the linear index y·x_count + x (extra
// workgroups return): forward/stats/input_grad/delta one workgroup per (row, group), rows·groups;
// gamma_grad/beta_grad one per quad of 4 channels, ceil(channels / 4).

//! include lib/gate.wgsl
//! include lib/reduce.wgsl
//! include lib/norm_groups.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_dropout.wgsl

const REDUCE_SIZE: u32 = 64u;

struct NormParams {
  rows: u32, groups: u32, channels: u32, spatial: u32, eps: f32, qd_mode: u32,
  drop_threshold: u32, drop_scale: f32, drop_per_solve: u32, drop_salt: u32,
}

@group(0) @binding(1) var<uniform> params: NormParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<storage, read> g_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> g_in: array<f32>;
@group(0) @binding(9) var<storage, read_write> g_gamma: array<f32>;
@group(0) @binding(10) var<storage, read_write> g_beta: array<f32>;
@group(0) @binding(11) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(12) var<storage, read_write> delta: array<f32>;
@group(0) @binding(13) var<storage, read_write> dqd: array<f32>;

fn norm_shape() -> NormShape { return NormShape(params.rows, params.groups, params.channels, params.spatial, params.eps); }
fn norm_x(e: u32) -> f32 { return x[e]; }

const NO_GROUP: u32 = 0xffffffffu;

// The (row, group) k = row·groups + g this workgroup takes, or NO_GROUP when the gate is closed
// or the workgroup is past the last (uniform: the workgroup returns on it as one).
fn open_group(wid: vec3u, groups: vec3u, lid: u32) -> u32 {
  if (gate_closed(lid)) { return NO_GROUP; }
  let k = group_index(wid, groups);
  return select(k, NO_GROUP, k >= params.rows * params.groups);
}

// group_stats(k), also stored in stats[2k], stats[2k + 1] for gamma_grad_main.
fn saved_group_stats(k: u32, lid: u32) -> vec2<f32> {
  let st = group_stats(k, lid);
  if (lid == 0u) {
    stats[2u * k] = st.x;
    stats[2u * k + 1u] = st.y;
  }
  return st;
}

@compute @workgroup_size(REDUCE_SIZE)
fn forward_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                @builtin(num_workgroups) groups: vec3u) {
  let k = open_group(wid, groups, lid);
  if (k == NO_GROUP) { return; }
  let st = group_stats(k, lid);
  let m = group_size();
  let key = epi_key();
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    y[e] = epilogue_forward(normalised(e, st), e, key);
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn delta_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
              @builtin(num_workgroups) groups: vec3u) {
  let k = open_group(wid, groups, lid);
  if (k == NO_GROUP) { return; }
  let st = group_stats(k, lid);
  let m = group_size();
  let key = epi_key();
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    let back = epilogue_adjoint(normalised(e, st), g_out[e], e, key);
    delta[e] = back.x;
    if (params.qd_mode == 1u) { dqd[e] = back.y; }
    if (params.qd_mode == 2u) { dqd[e] += back.y; }
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn stats_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
              @builtin(num_workgroups) groups: vec3u) {
  let k = open_group(wid, groups, lid);
  if (k == NO_GROUP) { return; }
  saved_group_stats(k, lid);
}

@compute @workgroup_size(REDUCE_SIZE)
fn input_grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                   @builtin(num_workgroups) groups: vec3u) {
  let k = open_group(wid, groups, lid);
  if (k == NO_GROUP) { return; }
  // Saved for gamma_grad_main, encoded after this in the same adjoint.
  let st = saved_group_stats(k, lid);
  let m = group_size();
  var acc = vec4<f32>(0.0);
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    let xh = (x[e] - st.x) * st.y;
    let d = g_out[e] * gamma[e % params.channels];
    acc += vec4<f32>(d, d * xh, 0.0, 0.0);
  }
  let means = workgroup_sum(acc, lid) / f32(m);
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    let xh = (x[e] - st.x) * st.y;
    let d = g_out[e] * gamma[e % params.channels];
    g_in[e] = st.y * (d - means.x - xh * means.y);
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn gamma_grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                   @builtin(num_workgroups) groups: vec3u) {
  if (gate_closed(lid)) { return; }
  let c0 = group_index(wid, groups) * 4u;
  if (c0 >= params.channels) { return; }
  let cg = group_channels();
  let pixels = params.rows * params.spatial;
  var acc = vec4<f32>(0.0);
  for (var p = lid; p < pixels; p += REDUCE_SIZE) {
    let row = p / params.spatial;
    for (var t = 0u; t < 4u; t++) {
      let c = c0 + t;
      if (c >= params.channels) { break; }
      let k = row * params.groups + c / cg;
      let e = p * params.channels + c;
      acc[t] += g_out[e] * (x[e] - stats[2u * k]) * stats[2u * k + 1u];
    }
  }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) {
    for (var t = 0u; t < 4u; t++) {
      if (c0 + t < params.channels) { g_gamma[c0 + t] = total[t]; }
    }
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn beta_grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                  @builtin(num_workgroups) groups: vec3u) {
  if (gate_closed(lid)) { return; }
  let c0 = group_index(wid, groups) * 4u;
  if (c0 >= params.channels) { return; }
  let pixels = params.rows * params.spatial;
  var acc = vec4<f32>(0.0);
  for (var p = lid; p < pixels; p += REDUCE_SIZE) {
    for (var t = 0u; t < 4u; t++) {
      if (c0 + t < params.channels) { acc[t] += g_out[p * params.channels + c0 + t]; }
    }
  }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) {
    for (var t = 0u; t < 4u; t++) {
      if (c0 + t < params.channels) { g_beta[c0 + t] = total[t]; }
    }
  }
}
