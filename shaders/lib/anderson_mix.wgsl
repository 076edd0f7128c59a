// Anderson's mix of one element, after lib/anderson_alpha.wgsl's α: u'_i = (1 − β)·Σ α_j x_j[i]
// + β·Σ α_j fx_j[i] over the valid slots, written into slot q of the ring; on a restart slot 0
// first takes slot p's entry. Everything element i needs is read before it is written, so q == p
// (window 1) is safe. The batch step (anderson_step.wgsl) and the per-row one (rows_mix.wgsl)
// share it. The includer declares x_ring, fx_ring (read_write, slots of params.stride values)
// and params.stride, params.beta.

//! include lib/anderson_alpha.wgsl
//! include lib/anderson_restart.wgsl

// Element i of u' for the ring entry (p, len, restart, q), read from the ring (nothing written:
// the split-k step, anderson_split_step.wgsl, computes it in several workgroups).
fn anderson_mixed(i: u32, entry: vec4<u32>) -> f32 {
  let s = params.stride;
  var sum_x = 0.0;
  var sum_fx = 0.0;
  for (var j = 0u; j < entry.y; j++) {
    sum_x += alpha_value[j] * x_ring[j * s + i];
    sum_fx += alpha_value[j] * fx_ring[j * s + i];
  }
  return (1.0 - params.beta) * sum_x + params.beta * sum_fx;
}

// Element i for the ring entry (p, len, restart, q): u'_i into slot q.
fn anderson_mix_element(i: u32, entry: vec4<u32>) {
  let s = params.stride;
  let mixed = anderson_mixed(i, entry);
  anderson_restart_element(i, entry);
  x_ring[entry.w * s + i] = mixed;
}

