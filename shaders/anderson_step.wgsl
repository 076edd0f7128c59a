// One Anderson step before the iteration's evaluation, in every workgroup: ends the iteration
// before (lib/step.wgsl: measures the residual its evaluation left as partials, keeps the best,
// decides), completes row and column p of the Gram matrix G from the partial dots the measurement
// left (lib/anderson_measure.wgsl), solves for α (lib/anderson_alpha.wgsl: every workgroup the
// same α from the same sums), and mixes its own elements of u' = (1 − β)·Σ α_j x_j + β·Σ α_j fx_j
// into ring slot q (on a restart slot 0 first takes slot p's entry). The evaluation of u' and its
// measurement follow (the layer's kernels and anderson_measure.wgsl, or anderson_dense_step.wgsl).
// Workgroup 0 writes G's new row; the others read only rows and columns other than p from the
// buffer, so none reads what another writes.
// The commit's operands are ring slots of the iteration measured: candidate x_q, previous x_p
// (x_0 after a restart), read from x_ring, which this kernel also writes.
// Bindings: lib/step.wgsl's 0–3, 6, 7; ring (the schedule, lib/anderson_ring.wgsl); x_ring,
//           fx_ring [slots × stride] (read_write); gram [slots × slots] (read_write).
// Dispatch: (groups) of REDUCE_SIZE threads; element i belongs to workgroup (i / REDUCE_SIZE) mod groups.

//! include lib/reduce.wgsl
//! include lib/step.wgsl
//! include lib/anderson_ring.wgsl
//! include lib/anderson_mix.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(8) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(9) var<storage, read_write> x_ring: array<f32>;
@group(0) @binding(10) var<storage, read_write> fx_ring: array<f32>;
@group(0) @binding(11) var<storage, read_write> gram: array<f32>;

var<workgroup> gram_row: array<f32, MAX_SLOTS>;
var<private> newest: u32; // p of this iteration, for anderson_gram_at

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

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (step_begin(group.x, count.x, lid)) { return; }
  let entry = ring_entry(step_nstep);
  let p = entry.x;
  let len = entry.y;
  let m = params.slots;
  newest = p;
  for (var j = lid; j < len; j += REDUCE_SIZE) {
    var dot = 0.0;
    let chunk = params.partial_in + (1u + j / 4u) * params.partial_groups; // four slots per vec4
    for (var g = 0u; g < params.partial_groups; g++) { dot += step_partials[chunk + g][j % 4u]; }
    gram_row[j] = dot;
    if (group.x == 0u) {
      gram[p * m + j] = dot;
      gram[j * m + p] = dot;
    }
  }
  workgroupBarrier();
  if (lid == 0u) { anderson_alpha(p, len, m, params.reg); }
  workgroupBarrier();
  for (var i = group.x * REDUCE_SIZE + lid; i < params.state_size; i += count.x * REDUCE_SIZE) {
    anderson_mix_element(i, entry);
  }
}
