// Broyden, after broyden_decide.wgsl: finishes the rank-one update and takes the next step,
// elementwise on each workgroup's own elements (lib/broyden_advance.wgsl: every workgroup sums
// the decide kernel's rank-one partials in the same fixed order, then U_col, Vᵀ_col, the next
// direction and the next trial point, where the line search starts too). Workgroup 0 copies the
// new header (ctrl_b) back into ctrl.h, where the next evaluation's gate, the line search and the
// readback look.
// Entry `head_main` is the same advance as the first kernel of a prefix layer whose first kernels
// are elementwise stages (FusedPrefix.head of kind 'pointwise', e.g. `add(Qd), linear, tanh`):
// it also stores out = chain(x_{t+1}) (lib/epilogue.wgsl's chain, without dropout, EPI_OP*), the
// output of those stages, so they and the advance kernel are one dispatch (k + 1 per iteration).
// Bindings: ctrl (rw); ctrl_b (read); params {n, groups, rows, stride, cur, memory, rank_parts,
//           thread_sums}; sums (read);
//           state, factors, aux (rw); head_main: epi_qd [n] (read), out [n] (rw).
// Dispatch: (groups), groups = the decide kernel's.

//! include lib/reduce.wgsl
//! include lib/broyden_advance.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_fixed.wgsl

const REDUCE_SIZE: u32 = 64u;

struct AdvanceParams { n: u32, groups: u32, rows: u32, stride: u32, cur: u32, memory: u32, rank_parts: u32, thread_sums: u32 }

@group(0) @binding(0) var<storage, read_write> ctrl: Control;
@group(0) @binding(1) var<storage, read> ctrl_b: ControlHeader;
@group(0) @binding(2) var<uniform> params: AdvanceParams;
@group(0) @binding(3) var<storage, read> sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u, lid)) { return; }
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    advance_store(params.cur, i, advance_element(params.cur, i));
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn head_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (advance_begin(group.x == 0u, lid)) { return; }
  for (var i = group.x * REDUCE_SIZE + lid; i < params.n; i += params.groups * REDUCE_SIZE) {
    let e = advance_element(params.cur, i);
    advance_store(params.cur, i, e);
    out[i] = epilogue_forward(e.w, i, epi_key());
  }
}
