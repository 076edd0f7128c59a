// The combine of a product split over k (lib/gemm_split.wgsl): element i of C [m, n] is
// Σ_s gemm_partial[base + s·size + i] over the slices in order (size = m·n). One function wherever
// the sum is taken (gemm_combine_main, the fused split-k steps), so they all agree bit for bit.
// The includer declares `gemm_partial` ([splits, m, n] from base) and params.splits.

fn gemm_split_sum(base: u32, size: u32, i: u32) -> f32 {
  var acc = 0.0;
  for (var s = 0u; s < params.splits; s++) { acc += gemm_partial[base + s * size + i]; }
  return acc;
}
