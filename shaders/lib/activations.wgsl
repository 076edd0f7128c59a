// Activation functions shared by layer kernels.

// tanh that stays finite for large |x| (some drivers compute tanh through exp and overflow to NaN);
// tanh(±15) is ±1 in float32 already.
// NaN is passed through: clamp(NaN) returns a bound on some drivers, and a NaN must reach the
// residual so the solver can stop on it instead of converging to ±1.
fn safe_tanh(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  return tanh(clamp(x, -15.0, 15.0));
}
