// Activation functions shared by layer kernels: the elementwise stages (stages/elementwise.wgsl)
// and the epilogues fused after a dense product (lib/epilogue.wgsl) call the same code, so a fused
// and an unfused layer compute the same bits.

// Op codes of the activations (TypeScript reads them from here by reflection).
const OP_TANH: u32 = 0u;
const OP_RELU: u32 = 1u;
const OP_GELU: u32 = 2u; // the tanh approximation, jax.nn.gelu's default

const GELU_C: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

// tanh that stays finite for large |x| (some drivers compute tanh through exp and overflow to NaN);
// tanh(±15) is ±1 in float32 already.
// NaN is passed through: clamp(NaN) returns a bound on some drivers, and a NaN must reach the
// residual so the solver can stop on it instead of converging to ±1.
fn safe_tanh(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  return tanh(clamp(x, -15.0, 15.0));
}

// act(v) for activation `op`.
fn act_value(op: u32, v: f32) -> f32 {
  if (op == OP_TANH) { return safe_tanh(v); }
  if (op == OP_RELU) { return max(v, 0.0); }
  return 0.5 * v * (1.0 + safe_tanh(GELU_C * (v + GELU_A * v * v * v)));
}

// act'(v) for activation `op` (relu'(0) = 0).
fn act_slope(op: u32, v: f32) -> f32 {
  if (op == OP_TANH) {
    let t = safe_tanh(v);
    return 1.0 - t * t;
  }
  if (op == OP_RELU) { return select(0.0, 1.0, v > 0.0); }
  let t = safe_tanh(GELU_C * (v + GELU_A * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * v * v);
}
