// Activation functions shared by layer kernels.

// tanh that stays finite for large |x| (some drivers compute tanh through exp and overflow to NaN);
// tanh(±15) is ±1 in float32 already.
fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}
