// The prologue of an Anderson step, in every workgroup (anderson_step.wgsl, and the split-k step
// anderson_split_step.wgsl that mixes inside its product): ends the iteration before
// (lib/step.wgsl: measures the residual its evaluation left as partials, keeps the best, decides),
// completes row and column p of the Gram matrix G from the partial dots the measurement left
// (lib/anderson_measure.wgsl), and solves for α (lib/anderson_alpha.wgsl: every workgroup the same
// α from the same sums), ready for lib/anderson_mix.wgsl. Workgroup 0 writes G's new row; the
// others read only rows and columns other than p from the buffer, so none reads what another writes.
// The commit's operands are ring slots of the iteration measured: candidate x_q, previous x_p
// (x_0 after a restart), read from x_ring.
// Declares bindings 8–11 besides lib/step.wgsl's: ring (the schedule, lib/anderson_ring.wgsl);
// x_ring, fx_ring [slots × stride] (read_write); gram [slots × slots] (read_write).

//! include lib/step.wgsl
//! include lib/anderson_ring.wgsl
//! include lib/anderson_mix.wgsl

@group(0) @binding(8) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(9) var<storage, read_write> x_ring: array<f32>;
@group(0) @binding(10) var<storage, read_write> fx_ring: array<f32>;
@group(0) @binding(11) var<storage, read_write> gram: array<f32>;

var<workgroup> gram_row: array<f32, ALPHA_SLOTS>;
var<private> newest: u32; // p of this iteration, for anderson_gram_at
// The ring entry (p, len, restart, q) this step mixes, set by anderson_step_begin.
var<private> anderson_entry: vec4<u32>;

// The iteration measured is step_nstep − 1: its candidate x_q and previous x_p (x_0 after a restart).
fn step_candidate_at(i: u32) -> f32 {
  return x_ring[ring_entry(step_nstep - 1u).w * params.stride + i];
}
fn step_previous_at(i: u32) -> f32 {
  let e = ring_entry(step_nstep - 1u);
  return x_ring[select(e.x, 0u, e.z != 0u) * params.stride + i];
}

fn anderson_gram_at(r: u32, c: u32) -> f32 {
  if (r == newest) { return gram_row[c]; }
  if (c == newest) { return gram_row[r]; }
  return gram[r * params.slots + c];
}

// The prologue for workgroup `group` (flat) of `groups`; returns whether the solve is done. Then
// anderson_entry is this step's entry and alpha_value its α (every thread).
fn anderson_step_begin(group: u32, groups: u32, lid: u32) -> bool {
  if (step_begin(group, groups, lid)) { return true; }
  let entry = ring_entry(step_nstep);
  anderson_entry = entry;
  let p = entry.x;
  let len = entry.y;
  let m = params.slots;
  newest = p;
  for (var j = lid; j < len; j += REDUCE_SIZE) {
    var dot = 0.0;
    let chunk = params.partial_in + (1u + j / 4u) * params.partial_groups; // four slots per vec4
    for (var g = 0u; g < params.partial_groups; g++) { dot += step_partials[chunk + g][j % 4u]; }
    gram_row[j] = dot;
    if (group == 0u) {
      gram[p * m + j] = dot;
      gram[j * m + p] = dot;
    }
  }
  workgroupBarrier();
  if (lid == 0u) { anderson_alpha(p, len, m, params.reg); }
  workgroupBarrier();
  return false;
}
