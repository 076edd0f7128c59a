// Per-sample convergence, Anderson (options.convergence = 'per-sample'): one row's mix, one
// workgroup per row. Row r has its own history (its d columns of every ring slot), Gram matrix
// G_r (gram[r], slots × slots) and α: the new row/column p of G_r from the dots that
// rows_measure.wgsl left, α by lib/anderson_alpha.wgsl, then u' = (1 − β)·Σ α_j x_j + β·Σ α_j fx_j
// into slot q (on a restart slot 0 first takes slot p's entry and G_r[0][0] = G_r[p][p]), with
// (p, len, restart, q) = ring_entry(the row's nstep). A row that has stopped returns at once.
// Bindings: rows [batch] ControlHeader (read); params {d, stride, slots, reg, beta}; ring;
//           x_ring, fx_ring [slots × stride] (read_write); gram: [batch × slots²] Gram matrices, then
//           [batch × MAX_SLOTS] dots (rows_measure.wgsl); ctrl (read: the solve's done flag); going_rows.
// Dispatch: indirect, going_rows.groups (lib/rows_active.wgsl) of 64 threads.

//! include lib/control.wgsl
//! include lib/anderson_ring.wgsl
//! include lib/anderson_mix.wgsl
//! include lib/rows_active.wgsl

struct MixParams { d: u32, stride: u32, slots: u32, reg: f32, beta: f32, batch: u32 }

@group(0) @binding(0) var<storage, read> rows: array<ControlHeader>;
@group(0) @binding(1) var<uniform> params: MixParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> x_ring: array<f32>;
@group(0) @binding(4) var<storage, read_write> fx_ring: array<f32>;
@group(0) @binding(5) var<storage, read_write> gram: array<f32>;
@group(0) @binding(6) var<storage, read> going_rows: RowsActive;
@group(0) @binding(7) var<storage, read> ctrl: Control;

var<private> gram_base: u32;
var<workgroup> row_done_value: u32;

fn anderson_gram_at(r: u32, c: u32) -> f32 { return gram[gram_base + r * params.slots + c]; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = going_rows.rows[group.x];
  if (lid == 0u) { row_done_value = rows[row].done | ctrl.h.done; }
  if (workgroupUniformLoad(&row_done_value) != 0u) { return; }
  let entry = ring_entry(rows[row].nstep);
  let p = entry.x;
  let len = entry.y;
  let m = params.slots;
  gram_base = row * m * m;
  for (var j = lid; j < len; j += 64u) {
    let dot = gram[params.batch * m * m + row * MAX_SLOTS + j];
    gram[gram_base + p * m + j] = dot;
    gram[gram_base + j * m + p] = dot;
  }
  storageBarrier();
  if (lid == 0u) {
    anderson_alpha(p, len, m, params.reg);
    if (entry.z != 0u) { gram[gram_base] = gram[gram_base + p * m + p]; }
  }
  workgroupBarrier();
  let base = row * params.d;
  for (var j = lid; j < params.d; j += 64u) {
    anderson_mix_element(base + j, entry);
  }
}
