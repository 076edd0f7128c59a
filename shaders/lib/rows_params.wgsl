// The uniform of the per-sample kernels (rows_measure.wgsl, rows_broyden.wgsl): lib/finish_step.wgsl's
// rules (eps … stall_steps; trace_cap 0: rows record no trace), then the kernels' own members:
//   mode, phase   rows_measure: the finish mode and the phase
//   d, stride     row length; slot stride of the ring or state buffers
//   slots         rows_measure: Anderson's ring slots
//   first, cur    rows_broyden: the start's pass; the iteration's parity
//   batch         rows
struct RowsParams {
  eps: f32,
  stop_rel: u32,
  return_final: u32,
  max_depth: u32,
  trace_cap: u32,
  memory: u32,
  line_search: u32,
  stall_steps: u32,
  mode: u32,
  phase: u32,
  d: u32,
  stride: u32,
  slots: u32,
  first: u32,
  cur: u32,
  batch: u32,
}
