// Anderson on a dense layer whose product is split over k: the combine of the split product
// anderson_split_step.wgsl left and the iteration's measurement, in one dispatch (so an iteration
// is the two). Element i (owned by one workgroup): on a restart slot 0 first takes slot p's entry,
// then slot q takes u'_i (the step stored it in `mixed`: there several workgroups read the ring,
// so none may write it), fx_q[i] = epilogue(Σ_s partials + bias) (lib/gemm_split_sum.wgsl: the
// combine's order), and lib/anderson_measure.wgsl measures the pair — the same order of reads and
// writes per element as anderson_step.wgsl then anderson_measure.wgsl.
// Bindings: lib/anderson_measure.wgsl's 0–6; bias [n]; epi_qd [m, n]; gemm_partial [splits, m, n];
//           mixed [m, n] (u').
// Dispatch: (groups) of REDUCE_SIZE threads; element i belongs to workgroup (i / REDUCE_SIZE) mod groups.

//! include lib/reduce.wgsl
//! include lib/anderson_measure.wgsl
//! include lib/anderson_restart.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl
//! include lib/gemm_split_sum.wgsl

const REDUCE_SIZE: u32 = 64u;

@group(0) @binding(7) var<storage, read> bias: array<f32>;
@group(0) @binding(8) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(9) var<storage, read> gemm_partial: array<f32>;
@group(0) @binding(10) var<storage, read> mixed: array<f32>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) count: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (measure_begin(lid)) { return; }
  let entry = ring_entry(ctrl.h.nstep); // the entry the step mixed: its slot q is the one measured
  let base = measure_base();
  for (var i = group.x * REDUCE_SIZE + lid; i < params.state_size; i += count.x * REDUCE_SIZE) {
    anderson_restart_element(i, entry);
    let x = mixed[i];
    x_ring[base + i] = x;
    let fx = epilogue_forward(gemm_split_sum(0u, params.state_size, i) + bias[i % params.n], i, epi_key());
    fx_ring[base + i] = fx;
    measure_element(i, x, fx);
  }
  measure_store(group.x, count.x, lid);
}
