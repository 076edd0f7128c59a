// Counter-based random numbers for layer kernels. There is no generator state: every draw is a
// pure function of (key, stream, counter), so each thread draws its own element's number, in any
// order, and the same inputs give the same bits on every run and every device.
// src/reference/dropout.ts mirrors these functions on the CPU (the tests compare masks exactly).
//
// rng_permute is one LCG step followed by PCG's RXS-M-XS output permutation (O'Neill, 2014), used
// as an integer hash: a bijection of u32 with good avalanche. Inputs are absorbed one at a time,
// h = permute(h ^ input), and the counter gets a second round so that neighbouring counters (the
// elements of one tensor) are decorrelated.

fn rng_permute(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Key of one stream of a seed (for dropout: one evaluation of f in a solve).
fn rng_stream_key(key: u32, stream: u32) -> u32 {
  return rng_permute(rng_permute(key) ^ stream);
}

// Uniformly distributed u32 number `counter` of the stream `stream_key`.
fn rng_u32(stream_key: u32, counter: u32) -> u32 {
  return rng_permute(rng_permute(stream_key ^ counter) ^ stream_key);
}
