// lib/gemm_rows_vec4.wgsl's B operand for kernels whose B is a weight [k, n] (row-major, n a
// multiple of 4): the weight's buffer bound a second time as array<vec4<f32>> (WGSL cannot view one
// binding at two element types), so the same buffer serves the scalar hooks through the
// includer's own `weight` binding and the vec4 loads here. Binding 15: above every includer's own
// bindings (dense.wgsl, the dense and split step kernels), so one declaration serves them all; an entry
// point binds it only if it reads it (the vec4 bodies). The includer supplies `params.n`.

@group(0) @binding(15) var<storage, read> weight4: array<vec4<f32>>;

fn gemm_b4(kk: u32, col: u32) -> vec4<f32> { return weight4[(kk * params.n + col) / 4u]; }
