// Inverted dropout, shared by the dropout stage (stages/dropout.wgsl) and the epilogues fused after
// a dense product (lib/epilogue.wgsl), forward and adjoint, so that an adjoint applies exactly the
// mask of the forward it differentiates and a fused layer draws the masks of the unfused one.
// The including kernel's `params` declares
//  drop_threshold: u32  an element is dropped when its draw is below it (rate · 2³²); 0 = no dropout
//  drop_scale: f32      1 / (1 − rate), rounded to f32, applied to the kept elements
//  drop_per_solve: u32  1: one mask for the whole solve (stream 0); 0: stream = gate's eval index
//  drop_salt: u32       xor-ed into the solve's key: the dropout's position in its layer, so two
//                       dropouts of one layer draw different masks (the tanh block's is 0))
// Noise is drawn only when the gate says so (training mode inside a solve); otherwise the factor
// is not applied at all, so the output is bit-identical to the deterministic block's.

//! include lib/gate.wgsl
//! include lib/rng.wgsl

fn dropout_active() -> bool {
  return params.drop_threshold != 0u && gate_noise_on();
}

// Stream key of this evaluation's mask. Per solve uses stream 0: the mask that evaluation 0 of the
// per-iteration mode gets, held fixed.
fn dropout_stream_key() -> u32 {
  let stream = select(gate_eval_index(), 0u, params.drop_per_solve != 0u);
  return rng_stream_key(gate_key() ^ params.drop_salt, stream);
}

// value · mask[i] / (1 − rate) for element i (row-major over the whole [batch, d] state).
fn dropout_apply(value: f32, stream_key: u32, i: u32) -> f32 {
  let dropped = rng_u32(stream_key, i) < params.drop_threshold;
  return select(value * params.drop_scale, 0.0, dropped);
}
