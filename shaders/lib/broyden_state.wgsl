// Layout of Broyden's buffers, shared by its kernels (keeps each kernel within WebGPU's default
// 8 storage buffers per stage: Chromium allows at most 10).
//   state:   four slots of `stride` floats — x_a, x_b, g_a, g_b. With `cur` = iteration parity,
//            the current iterate and residual are slots cur and 2 + cur, the new ones 1 − cur and 3 − cur.
//   factors: U columns (L slots), then Vᵀ rows (L slots).
//   vw:      v, then w (broyden_rank_one.wgsl).

fn x_index(cur: u32, stride: u32, i: u32) -> u32 { return cur * stride + i; }
fn x_new_index(cur: u32, stride: u32, i: u32) -> u32 { return (1u - cur) * stride + i; }
fn g_index(cur: u32, stride: u32, i: u32) -> u32 { return (2u + cur) * stride + i; }
fn g_new_index(cur: u32, stride: u32, i: u32) -> u32 { return (3u - cur) * stride + i; }
fn u_index(stride: u32, j: u32, i: u32) -> u32 { return j * stride + i; }
fn vt_index(memory: u32, stride: u32, j: u32, i: u32) -> u32 { return (memory + j) * stride + i; }
