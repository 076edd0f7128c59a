// Dropout for lib/epilogue.wgsl: masks from the evaluation gate (lib/dropout.wgsl), exactly the
// dropout stage's. The includer's `params` has the dropout members.
//! include lib/dropout.wgsl

// The dropout stream of this evaluation, or 0 when no mask applies (no dropout op, inference mode).
fn epi_key() -> u32 {
  if (epi_has_dropout() && dropout_active()) { return dropout_stream_key(); }
  return 0u;
}

fn epi_dropout_on() -> bool { return dropout_active(); }

fn epi_dropout(v: f32, key: u32, i: u32) -> f32 { return dropout_apply(v, key, i); }
