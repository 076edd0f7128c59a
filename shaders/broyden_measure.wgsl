// Broyden, after the layer's evaluation fx = f(x') (in aux): lib/broyden_measure.wgsl, the new
// residual g' = fx − x' and every partial sum the iteration's bookkeeping needs, in one dispatch.
// Bindings: lib/broyden_measure.wgsl's 0–5.
// Dispatch: (groups, ncols + 1), ncols = the valid columns before this update (min(t, L)).

//! include lib/reduce.wgsl
//! include lib/broyden_measure.wgsl

const REDUCE_SIZE: u32 = 64u;

fn broyden_fx(i: u32) -> f32 { return aux[fx_index(params.stride, i)]; }

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) group: vec3u, @builtin(num_workgroups) grid: vec3u, @builtin(local_invocation_index) lid: u32) {
  broyden_measure(group, grid, lid);
}
