// Anderson's restart of the history, element i: slot 0 takes slot p's entry (x and fx) when the
// ring entry (p, len, restart, q) restarts, before slot q takes u' (lib/anderson_mix.wgsl; the
// split-k measurement, anderson_split_measure.wgsl, does it where it stores u').
// The includer declares x_ring, fx_ring (read_write, slots of params.stride values).

fn anderson_restart_element(i: u32, entry: vec4<u32>) {
  if (entry.z != 0u) {
    x_ring[i] = x_ring[entry.x * params.stride + i];
    fx_ring[i] = fx_ring[entry.x * params.stride + i];
  }
}
