// The tanh block's forward kernel (block_forward.wgsl), tiled 4 rows per workgroup (lib/block_tile.wgsl):
// the tiling supplies the entry point `main` and the dispatch size.

//! include lib/block_tile.wgsl
//! include block_forward.wgsl
