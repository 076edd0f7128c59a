// The tanh block's forward kernel (block_forward.wgsl), tiled 64 × 64 (lib/block_mm.wgsl, for large batches):
// the tiling supplies the entry point `main` and the dispatch size.

//! include lib/block_mm.wgsl
//! include block_forward.wgsl
