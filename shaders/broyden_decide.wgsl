// Broyden, after broyden_measure.wgsl: ends the iteration and starts its rank-one update, in one
// dispatch whose every workgroup reduces the same partial sums in the same fixed order (so all of
// them reach the same outcome without another dispatch):
//   0. after the dense line-search trials (shaders/broyden_dense_step.wgsl; the layout's `search`
//      word), when the search has not finished: the decision on the last trial's φ partials
//      (lib/line_search.wgsl, the same rules the trials run), on the private header copy;
//   1. the measurement: the residual row's sums, then lib/finish_step.wgsl's MODE_BROYDEN rules on
//      a private copy of the header (ctrl.h); workgroup 0 stores the new header in ctrl_b (the
//      advance kernel copies it back: workgroups that all read ctrl.h cannot update it) and
//      records the trace;
//   2. best-so-far: when the rules found an improvement, each workgroup copies its share of
//      (x', x) into (best_u, best_prev), and with return_b of the factors into best_factors (the
//      factors before this update: those whose direction led to x');
//   3. the coefficients a_j = Δx·U_j, c_j = Vᵀ_j·Δg, d_j = Vᵀ_j·g' (COEF_COLUMNS columns at a time
//      through workgroup memory: min(64, L), src/solvers/broyden.ts compiles each memory's
//      variant, since on SwiftShader a workgroup array costs every dispatch in proportion to its
//      declared size, docs/swiftshader-costs.md; workgroup 0 also stores column j's at
//      coef_offset + j for the advance kernel),
//      then on its own elements the rank-one vectors against the factors before the update:
//        v_i = (Δxᵀ B)_i = −Δx_i + Σ_j a_j Vᵀ_j[i],   w_i = Δx_i − (B·Δg)_i = Δx_i + Δg_i − Σ_j U_j[i] c_j
//      and its partial sums (v·Δg, v·g', 0, 0) at rank_offset — from the explicit v (the shortcut
//      vᵀΔg = −Δx·Δg + Σ a_j c_j cancels badly in float32 when |U| is large): one per workgroup,
//      or with the layout's thread_sums one per thread (lib/row_sums.wgsl; then the residual
//      and φ rows are summed serially too).
// Bindings: ctrl (rw); ctrl_b (ControlHeader, rw); params (finish.wgsl's: the rules, and groups);
//           sums (rw; its layout entries: (n, stride, rows, return_b), then the entries of the
//           measuring kernel's rows in iteration 0 and after, `search` (1: the dense trials leave
//           the last decision of iterations after the first to this kernel) and thread_sums, as
//           u32); state, factors (read); aux (rw: reads update, writes v, w);
//           best_u, best_prev, best_factors (rw; best_factors: U then Vᵀ, 2·L·stride).
// Dispatch: (groups). The iteration's parity is that of hdr.nstep (the iterations counted before it).

//! include lib/control.wgsl
//! include lib/broyden_state.wgsl
//! include lib/reduce.wgsl
//! include lib/row_sums.wgsl
//! include lib/finish_step.wgsl
//! include lib/line_search.wgsl

const REDUCE_SIZE: u32 = 64u;
// Factor columns per round of the coefficients (at most REDUCE_SIZE: one thread sums each).
override COEF_COLUMNS: u32 = REDUCE_SIZE;

// finish.wgsl's FinishParams: this kernel is bound to the finish kernel's uniform (mode unused).
struct DecideParams {
  eps: f32,
  stop_rel: u32,
  return_final: u32,
  max_depth: u32,
  groups: u32,
  mode: u32,
  trace_cap: u32,
  memory: u32,
  line_search: u32,
  stall_steps: u32,
}

struct SolveLayout { n: u32, stride: u32, rows: u32, return_b: u32, partial_groups: u32, cur: u32, search: bool, thread_sums: u32 }

// The solve's layout (sums' first entries) for the iteration after `steps` counted ones.
fn read_layout(steps: u32) -> SolveLayout {
  let a = bitcast<vec4<u32>>(sums[0]);
  let b = bitcast<vec4<u32>>(sums[1]);
  return SolveLayout(a.x, a.y, a.z, a.w, select(b.y, b.x, steps == 0u), steps % 2u, steps != 0u && b.z != 0u, b.w);
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read_write> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: DecideParams;
@group(0) @binding(3) var<storage, read_write> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> state: array<f32>;
@group(0) @binding(5) var<storage, read> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read_write> best_u: array<f32>;
@group(0) @binding(8) var<storage, read_write> best_prev: array<f32>;
@group(0) @binding(9) var<storage, read_write> best_factors: array<f32>;

// Thread 0's reading of the header and the layout, for every thread: ncols (or DONE), the
// iterations counted, whether this kernel takes the line search's last decision (step 0), the
// measuring kernel's workgroups. Then its outcome of the rules: whether they found an
// improvement, ncols or DONE, the bits of hdr.step_s (a variable of its own: no barrier need
// separate the two, a thread may still be loading the first when thread 0 stores the second).
struct Counted { cols: u32, steps: u32, search: u32, parts: u32, thread_sums: u32 }
var<workgroup> counted_shared: Counted;
var<workgroup> outcome: vec3<u32>;
const DONE: u32 = 0xffffffffu;

// lib/row_sums.wgsl's rows: Broyden's sums.
fn row_entry(index: u32) -> vec4<f32> { return sums[index]; }
var<workgroup> coef_cache: array<vec2<f32>, COEF_COLUMNS>; // (a_j, c_j)

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  let groups = params.groups;
  if (lid == 0u) {
    hdr = ctrl.h;
    hdr_writer = group.x == 0u;
    let lay = read_layout(hdr.nstep);
    let search = select(0u, 1u, lay.search && line_search_open(hdr));
    counted_shared = Counted(select(min(hdr.nstep, params.memory), DONE, hdr.done != 0u), hdr.nstep, search, lay.partial_groups, lay.thread_sums);
  }
  let counted = workgroupUniformLoad(&counted_shared);
  if (counted.cols == DONE) {
    // Done before this iteration: carry the header over for the advance kernel, nothing else.
    if (lid == 0u && group.x == 0u) { ctrl_b = hdr; }
    return;
  }
  let ncols = counted.cols;
  let lay = read_layout(counted.steps);
  let stride = lay.stride;
  let cur = lay.cur;
  let serial = counted.thread_sums != 0u;
  // 0. The line search's decision on the last dense trial (row (LINE_SEARCH_EVALS − 1) mod 2).
  if (counted.search != 0u) {
    let total = sums_total_first(phi_offset(params.memory, lay.rows, (LINE_SEARCH_EVALS - 1u) % 2u), counted.parts, serial, lid);
    if (lid == 0u) { hdr = line_search_decide(hdr, total.x); }
  }
  // 1. The measurement (the residual row follows the dot rows).
  let t = sums_total_first(row_index(lay.rows, ncols, 0u), counted.parts, serial, lid);
  if (lid == 0u) {
    finish_step(MODE_BROYDEN, t);
    if (group.x == 0u) { ctrl_b = hdr; }
    outcome = vec3<u32>(hdr.improved, select(ncols, DONE, hdr.done != 0u), bitcast<u32>(hdr.step_s));
  }
  let decided = workgroupUniformLoad(&outcome);
  // 2. Best-so-far, own elements.
  if (decided.x != 0u) {
    for (var i = group.x * REDUCE_SIZE + lid; i < lay.n; i += groups * REDUCE_SIZE) {
      best_u[i] = state[x_new_index(cur, stride, i)];
      best_prev[i] = state[x_index(cur, stride, i)];
    }
    if (lay.return_b != 0u) {
      for (var i = group.x * REDUCE_SIZE + lid; i < 2u * params.memory * stride; i += groups * REDUCE_SIZE) {
        best_factors[i] = factors[i];
      }
    }
  }
  if (decided.y == DONE) { return; }
  // 3. The rank-one vectors, the coefficients COEF_COLUMNS at a time: each round sums its columns'
  // rows, then every element takes them (the first round starts v, w from Δx, Δg; the last one
  // adds the element's share of the rank-one sums), so one round reads each element once.
  let s = bitcast<f32>(decided.z);
  let coefs = coef_offset(params.memory, lay.rows);
  let rounds = max(1u, (ncols + COEF_COLUMNS - 1u) / COEF_COLUMNS);
  var partial = vec4<f32>(0.0);
  for (var r = 0u; r < rounds; r++) {
    let c0 = r * COEF_COLUMNS;
    let count = min(COEF_COLUMNS, ncols - c0);
    if (lid < count) {
      var sum = vec4<f32>(0.0);
      for (var g = 0u; g < lay.partial_groups; g++) { sum += sums[row_index(lay.rows, c0 + lid, g)]; }
      coef_cache[lid] = sum.xy;
      if (group.x == 0u) { sums[coefs + c0 + lid] = sum; }
    }
    workgroupBarrier();
    for (var i = group.x * REDUCE_SIZE + lid; i < lay.n; i += groups * REDUCE_SIZE) {
      let g_new = state[g_new_index(cur, stride, i)];
      let dg = g_new - state[g_index(cur, stride, i)];
      var v: f32;
      var w: f32;
      if (r == 0u) {
        let dx = s * aux[update_index(i)];
        v = -dx;
        w = dx + dg;
      } else {
        v = aux[v_index(stride, i)];
        w = aux[w_index(stride, i)];
      }
      for (var jj = 0u; jj < count; jj++) {
        let cj = coef_cache[jj];
        let j = c0 + jj;
        v += cj.x * factors[vt_index(params.memory, stride, j, i)];
        w -= factors[u_index(stride, j, i)] * cj.y;
      }
      aux[v_index(stride, i)] = v;
      aux[w_index(stride, i)] = w;
      if (r + 1u == rounds) { partial += vec4<f32>(v * dg, v * g_new, 0.0, 0.0); }
    }
    // Before the next round overwrites coef_cache (each thread reads back only its own v, w).
    if (r + 1u < rounds) { workgroupBarrier(); }
  }
  let rank = rank_offset(params.memory, lay.rows);
  if (serial) {
    sums[rank + group.x * REDUCE_SIZE + lid] = partial;
    return;
  }
  let total = workgroup_sum(partial, lid);
  if (lid == 0u) { sums[rank + group.x] = total; }
}

