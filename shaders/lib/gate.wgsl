// Evaluation gate, shared by every layer kernel. Binding 0 of a layer kernel is `gate`: a solver
// sets gate[0] != 0 once it has converged (or its line search has finished), and every layer
// kernel encoded after that returns at once. Solvers encode many iterations ahead of time and
// this is how the ones past convergence cost nothing.
// The gate (inside a solve: the solve's control block, lib/control.wgsl) also carries what a
// stochastic layer needs, as words the GPU fills in, since the iterations are encoded before it is
// known which of them will run:
//   gate[0] skip       non-zero: do nothing
//   gate[1] eval index evaluations of f already performed in this solve (0 for the first)
//   gate[2] key        the solve's `key` option
//   gate[3] noise on   1 in training mode; 0 with `inference: true` and outside a solve
//                      (engine.openGate() is all zeros)
@group(0) @binding(0) var<storage, read> gate: array<u32>;

var<workgroup> gate_value: u32;

// True when this evaluation is to be skipped. Uniform across the workgroup (workgroupUniformLoad),
// so a kernel may return on it and still use barriers afterwards.
fn gate_closed(local_index: u32) -> bool {
  if (local_index == 0u) { gate_value = gate[0]; }
  return workgroupUniformLoad(&gate_value) != 0u;
}

// Per-thread form, for kernels without barriers: no workgroup-wide load, which is itself a
// barrier. SwiftShader runs a barrier as a fiber switch of all 256 threads; an elementwise kernel
// over 200k values took 328 ms with gate_closed and 26 ms with this.
fn gate_skip() -> bool { return gate[0] != 0u; }

fn gate_eval_index() -> u32 { return gate[1]; }
fn gate_key() -> u32 { return gate[2]; }
fn gate_noise_on() -> bool { return gate[3] != 0u; }
