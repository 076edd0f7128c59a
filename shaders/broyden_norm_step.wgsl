// One dispatch of a Broyden iteration t ≥ 1 of a layer whose f ends in a group or layer
// normalisation with its chain, f(x) = chain(norm(prefix(x))) (ImplicitLayer.fusedStageTail, with
// a prefix: e.g. the MDEQ cell `conv2d, add(Qd), groupNorm, relu`), without the line search:
// broyden_advance.wgsl has stored the advance of iteration t − 1 (update_t, x_{t+1} and the new
// factor column) and the layer's kernels before the norm have written prefix(x_{t+1}) into
// `product_a`; this dispatch is the norm's forward with the measurement of broyden_measure.wgsl
// after it, each workgroup over its own (row, group) (lib/norm_groups.wgsl): it stores
// g' = chain(norm(·)) − x_{t+1}, then sums, per factor column c of the dots the decide kernel
// reads (the advance stored the new one: all come from the factors), (Δx·U_c, Vᵀ_c·Δg, Vᵀ_c·g')
// over its elements, then the residual row (Σ g'², Σ (g' + x')²), one entry per workgroup (with
// params.thread_sums per thread), as broyden_prefix_step.wgsl's product epilogue does; then
// broyden_decide.wgsl and the advance kernel. So an iteration of a layer of k kernels is k + 2
// dispatches (k + 3 as the layer, measure, decide, advance). The grid's spare workgroups store
// zero partials.
// Bindings: lib/broyden_norm.wgsl's 0–9; product_a, the norm's input [rows, spatial·channels] (10).
// Dispatch: one workgroup per (row, group), rows·groups, as a 2-D grid (x, y) read as the linear
//           index y·x_count + x.

//! include lib/reduce.wgsl
//! include lib/broyden_norm.wgsl
//! include lib/norm_groups.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(10) var<storage, read> product_a: array<f32>;

fn norm_x(e: u32) -> f32 { return product_a[e]; }

// Thread 0's reading of the header the advance kernel left: done, and the factor columns measured.
var<workgroup> step_open: vec2<u32>;

// This thread's share of the dots against column c over its elements of group k (none past the last).
fn column_partial(k: u32, c: u32, s: f32, lid: u32) -> vec4<f32> {
  var total = vec4<f32>(0.0);
  if (k >= params.batch * params.groups) { return total; }
  let stride = params.stride;
  let cur = params.cur;
  let m = group_size();
  for (var i = lid; i < m; i += REDUCE_SIZE) {
    let e = element(k, i);
    let g_new = state[g_new_index(cur, stride, e)];
    let vt = factors[vt_index(params.memory, stride, c, e)];
    let dg = g_new - state[g_index(cur, stride, e)];
    total += vec4<f32>(s * aux[update_index(e)] * factors[u_index(stride, c, e)], vt * dg, vt * g_new, 0.0);
  }
  return total;
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = group_index(wid, count);
  if (lid == 0u) { step_open = vec2<u32>(ctrl_b.done, min(ctrl_b.nstep, params.memory)); }
  let open = workgroupUniformLoad(&step_open);
  if (open.x != 0u) { return; }
  let ncols = open.y;
  let s = ctrl_b.ls_s;
  let stride = params.stride;
  let cur = params.cur;
  var residual = vec4<f32>(0.0);
  if (flat < params.batch * params.groups) {
    let st = group_stats(flat, lid);
    let m = group_size();
    for (var i = lid; i < m; i += REDUCE_SIZE) {
      let e = element(flat, i);
      let x_new = state[x_new_index(cur, stride, e)];
      let g_new = epilogue_forward(normalised(e, st), e, epi_key()) - x_new;
      state[g_new_index(cur, stride, e)] = g_new;
      let z = g_new + x_new;
      residual += vec4<f32>(g_new * g_new, z * z, 0.0, 0.0);
    }
  }
  let rows = params.rows;
  let phi = phi_offset(params.memory, rows, 0u);
  if (params.thread_sums != 0u) {
    let entry = flat * REDUCE_SIZE + lid;
    for (var c = 0u; c < ncols; c++) { sums[row_index(rows, c, entry)] = column_partial(flat, c, s, lid); }
    sums[row_index(rows, ncols, entry)] = residual;
    sums[phi + entry] = residual;
    return;
  }
  for (var c = 0u; c < ncols; c++) {
    let sum = workgroup_sum(column_partial(flat, c, s, lid), lid);
    if (lid == 0u) { sums[row_index(rows, c, flat)] = sum; }
  }
  let total = workgroup_sum(residual, lid);
  if (lid == 0u) {
    sums[row_index(rows, ncols, flat)] = total;
    sums[phi + flat] = total;
  }
}
