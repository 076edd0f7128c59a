// Evaluation gate, shared by every layer kernel. Binding 0 of a layer kernel is `gate`: a solver
// sets gate[0] != 0 once it has converged (or its line search has finished), and every layer
// kernel encoded after that returns at once. Solvers encode many iterations ahead of time and
// this is how the ones past convergence cost nothing.
@group(0) @binding(0) var<storage, read> gate: array<u32>;

var<workgroup> gate_value: u32;

// True when this evaluation is to be skipped. Uniform across the workgroup (workgroupUniformLoad),
// so a kernel may return on it and still use barriers afterwards.
fn gate_closed(local_index: u32) -> bool {
  if (local_index == 0u) { gate_value = gate[0]; }
  return workgroupUniformLoad(&gate_value) != 0u;
}
