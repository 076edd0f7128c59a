// Anderson's mix of one element, after lib/anderson_alpha.wgsl's α: u'_i = (1 − β)·Σ α_j x_j[i]
// + β·Σ α_j fx_j[i] over the valid slots, written into slot q of the ring; on a restart slot 0
// first takes slot p's entry. Everything element i needs is read before it is written, so q == p
// (window 1) is safe. The batch step (anderson_step.wgsl) and the per-row one (rows_mix.wgsl)
// share it. The includer declares x_ring, fx_ring (read_write, slots of params.stride values)
// and params.stride, params.beta.

//! include lib/anderson_alpha.wgsl

// Element i for the ring entry (p, len, restart, q).
fn anderson_mix_element(i: u32, entry: vec4<u32>) {
  let s = params.stride;
  var sum_x = 0.0;
  var sum_fx = 0.0;
  for (var j = 0u; j < entry.y; j++) {
    sum_x += alpha_value[j] * x_ring[j * s + i];
    sum_fx += alpha_value[j] * fx_ring[j * s + i];
  }
  let mixed = (1.0 - params.beta) * sum_x + params.beta * sum_fx;
  if (entry.z != 0u) {
    x_ring[i] = x_ring[entry.x * s + i];
    fx_ring[i] = fx_ring[entry.x * s + i];
  }
  x_ring[entry.w * s + i] = mixed;
}
