// The epilogue: the elementwise stages fused after a dense product (or a convolution), applied to
// each output value before it is stored, so `linear → add(Qd) → tanh → dropout` is one kernel.
// The chain is up to EPI_MAX ops, each an `override` constant set at pipeline creation (one
// pipeline per chain, with the unused ops folded away), in stage order:
//   OP_TANH / OP_RELU / OP_GELU (lib/activations.wgsl), OP_ADD_QD (v + epi_qd[i]),
//   OP_DROPOUT (lib/dropout.wgsl; its mask is element i of the [rows, n] output), OP_NONE.
// The same functions serve the forward (epilogue_forward) and the adjoint (epilogue_adjoint:
// recomputes the chain and walks it back), and the unfused stages call the same activation and
// dropout code, so fused and unfused layers agree bit for bit.
// The includer declares `epi_qd` (the injected input Qd, [rows, n]; bind any read-only buffer
// when the chain has no OP_ADD_QD) and includes how dropout is done: lib/epilogue_dropout.wgsl
// (masks from the gate, lib/dropout.wgsl) or lib/epilogue_fixed.wgsl (deterministic kernels that
// have no gate, e.g. the fused Picard iteration): they define epi_key, epi_dropout_on, epi_dropout.
//! include lib/activations.wgsl

const OP_ADD_QD: u32 = 3u;
const OP_DROPOUT: u32 = 4u;
const OP_NONE: u32 = 255u;
// Ops a chain can hold (src/layers/dense.ts reads it by reflection).
const EPI_MAX: u32 = 4u;

override EPI_OP0: u32 = OP_NONE;
override EPI_OP1: u32 = OP_NONE;
override EPI_OP2: u32 = OP_NONE;
override EPI_OP3: u32 = OP_NONE;

fn epi_has_dropout() -> bool {
  return EPI_OP0 == OP_DROPOUT || EPI_OP1 == OP_DROPOUT || EPI_OP2 == OP_DROPOUT || EPI_OP3 == OP_DROPOUT;
}

// One op on value v of element i.
fn epi_step(op: u32, v: f32, i: u32, key: u32) -> f32 {
  if (op == OP_NONE) { return v; }
  if (op == OP_ADD_QD) { return v + epi_qd[i]; }
  if (op == OP_DROPOUT) { return select(v, epi_dropout(v, key, i), epi_dropout_on()); }
  return act_value(op, v);
}

// d step(v) / dv, applied to a cotangent c (the dropout factor multiplies it, as the unfused
// dropout stage's adjoint does).
fn epi_back(op: u32, v: f32, c: f32, i: u32, key: u32) -> f32 {
  if (op == OP_NONE || op == OP_ADD_QD) { return c; }
  if (op == OP_DROPOUT) { return select(c, epi_dropout(c, key, i), epi_dropout_on()); }
  return c * act_slope(op, v);
}

// The chain on v (the product plus bias) of element i.
fn epilogue_forward(v: f32, i: u32, key: u32) -> f32 {
  let v1 = epi_step(EPI_OP0, v, i, key);
  let v2 = epi_step(EPI_OP1, v1, i, key);
  let v3 = epi_step(EPI_OP2, v2, i, key);
  return epi_step(EPI_OP3, v3, i, key);
}

// Given v (the product plus bias) and the cotangent g of the chain's output: x = the cotangent of
// v, y = the cotangent at OP_ADD_QD (∂Qd; 0 when the chain does not read Qd).
fn epilogue_adjoint(v: f32, g: f32, i: u32, key: u32) -> vec2<f32> {
  let v1 = epi_step(EPI_OP0, v, i, key);
  let v2 = epi_step(EPI_OP1, v1, i, key);
  let v3 = epi_step(EPI_OP2, v2, i, key);
  var c = g;
  var qd = 0.0;
  if (EPI_OP3 == OP_ADD_QD) { qd = c; }
  c = epi_back(EPI_OP3, v3, c, i, key);
  if (EPI_OP2 == OP_ADD_QD) { qd = c; }
  c = epi_back(EPI_OP2, v2, c, i, key);
  if (EPI_OP1 == OP_ADD_QD) { qd = c; }
  c = epi_back(EPI_OP1, v1, c, i, key);
  if (EPI_OP0 == OP_ADD_QD) { qd = c; }
  c = epi_back(EPI_OP0, v, c, i, key);
  return vec2<f32>(c, qd);
}
