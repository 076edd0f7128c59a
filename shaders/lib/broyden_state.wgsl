//! include lib/control.wgsl

// Layout of Broyden's buffers, shared by its kernels (few buffers per kernel: WebGPU's default is
// 8 storage buffers per stage).
//   state:   four slots of `stride` floats — x_a, x_b, g_a, g_b. With `cur` = iteration parity,
//            the current iterate and residual are slots cur and 2 + cur, the new ones 1 − cur and 3 − cur.
//   factors: U columns (L slots), then Vᵀ rows (L slots).
//   aux:     four slots — update (the step direction), v, w (the rank-one vectors), fx (the evaluation).
//   sums:    vec4 — first SUMS_LAYOUT entries of the solve's layout (written once per solve, read
//            by the decide kernel: its uniform is the finish kernel's rules, shared by every solve
//            with the same options), then the partial sums of one iteration in rows of `rows`
//            entries: the measuring kernel's (ncols + 1) rows (row c < ncols: the dots against
//            column c, row ncols: the residual sums; one entry per workgroup, row_index), at
//            rank_offset the decide kernel's rank-one sums (one per workgroup), at coef_offset the
//            coefficients (coef_offset + j: column j's), then two rows of φ partials (the dense
//            line-search trials', shaders/broyden_dense_step.wgsl: trial e writes row e mod 2).
//            With thread sums (a CPU adapter, lib/row_sums.wgsl) the dense step's and the
//            decide kernel's rows hold one entry per thread instead.

fn x_index(cur: u32, stride: u32, i: u32) -> u32 { return cur * stride + i; }
fn x_new_index(cur: u32, stride: u32, i: u32) -> u32 { return (1u - cur) * stride + i; }
fn g_index(cur: u32, stride: u32, i: u32) -> u32 { return (2u + cur) * stride + i; }
fn g_new_index(cur: u32, stride: u32, i: u32) -> u32 { return (3u - cur) * stride + i; }
fn u_index(stride: u32, j: u32, i: u32) -> u32 { return j * stride + i; }
fn vt_index(memory: u32, stride: u32, j: u32, i: u32) -> u32 { return (memory + j) * stride + i; }
fn update_index(i: u32) -> u32 { return i; }
fn v_index(stride: u32, i: u32) -> u32 { return stride + i; }
fn w_index(stride: u32, i: u32) -> u32 { return 2u * stride + i; }
fn fx_index(stride: u32, i: u32) -> u32 { return 3u * stride + i; }
// The offsets in `sums` for memory L and rows of `rows` entries.
const SUMS_LAYOUT: u32 = 2u;
fn row_index(rows: u32, c: u32, g: u32) -> u32 { return SUMS_LAYOUT + c * rows + g; }
fn rank_offset(memory: u32, rows: u32) -> u32 { return row_index(rows, memory + 1u, 0u); }
fn coef_offset(memory: u32, rows: u32) -> u32 { return row_index(rows, memory + 2u, 0u); }
fn phi_offset(memory: u32, rows: u32, half: u32) -> u32 { return coef_offset(memory, rows) + memory + half * rows; }

fn finite_or_zero(value: f32) -> f32 {
  return select(0.0, value, is_finite(value));
}
