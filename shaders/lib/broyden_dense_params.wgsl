// The uniform and bindings 0–7 of Broyden's fused steps on a dense product: broyden_dense_step.wgsl
// (the product's epilogue measures) and broyden_split_step.wgsl (split-k's first pass). Each adds
// its own operands from binding 8.

//! include lib/control.wgsl

struct DenseStepParams {
  rank_parts: u32,  // entries of the decide kernel's rank-one row
  rows: u32,        // entries per row of sums
  stride: u32,
  cur: u32,         // parity of iteration t
  memory: u32,
  m: u32,           // the product C [m, n] = A [m, k] · B [k, n]
  n: u32,
  k: u32,
  trial: u32,       // 0: the advance and s = 1; e ≥ 1: the line search's trial e
  header_in_b: u32, // trial e ≥ 1: 1 when the current header is ctrl_b (the new one goes to ctrl.h), 0 the reverse
  chunk: u32,       // split-k (broyden_split_step.wgsl; 0 elsewhere): k per slice, and the slices
  splits: u32,
  thread_sums: u32, // 1: the rows of partial sums hold one entry per thread (lib/row_sums.wgsl)
}

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read_write> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: DenseStepParams;
@group(0) @binding(3) var<storage, read_write> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read> weight: array<f32>;
