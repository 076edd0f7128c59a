// 3×3 convolution, stride 1, 'same' zero padding, NHWC (cross-correlation, like jax.lax.conv
// with 'SAME'), and its adjoints. Layouts, row-major:
//   x, g_in  [batch, height, width, in_ch]      weight, g_weight [3, 3, in_ch, out_ch] (HWIO)
//   y, g_out [batch, height, width, out_ch]     bias, g_bias     [out_ch]
// entry `forward_main`:      y[n,i,j,o] = bias[o] + Σ_{ky,kx,c} x[n, i+ky−1, j+kx−1, c] · weight[ky,kx,c,o]
//                            (lib/conv3x3.wgsl's conv_at, shared with shaders/picard_conv_step.wgsl)
// entry `input_grad_main`:   g_in[n,i,j,c] = Σ_{ky,kx,o} g_out[n, i−ky+1, j−kx+1, o] · weight[ky,kx,c,o]
// entry `weight_grad_main`:  g_weight[ky,kx,c,o] = Σ_{n,i,j} x[n, i+ky−1, j+kx−1, c] · g_out[n,i,j,o]
// entry `bias_grad_main`:    g_bias[o] = Σ_{n,i,j} g_out[n,i,j,o]
// entry `delta_main`:        (delta, dqd) = the epilogue chain walked back from g_out at the
//                            recomputed pre-chain value (lib/epilogue.wgsl), dqd written or added
//                            by params.qd_mode (1, 2; 0: not written)
// The forward applies the epilogue hook: the elementwise stages a sequential layer fuses after the
// convolution (add(Qd), activations, dropout; EPI_OP* override constants, none by default). With a
// chain, the adjoint entries read delta as their g_out.
// (out-of-image taps read 0). The two parameter gradients reduce over batch·height·width positions
// in one workgroup per output quad (4 consecutive out channels), each thread summing a fixed
// strided subset and lib/reduce.wgsl at 64 threads adding the REDUCE_SIZE = 64 partial sums in a fixed tree:
// deterministic (64 threads: a barrier costs in proportion to them on SwiftShader).
// Bindings: gate; params {batch, height, width, in_ch, out_ch, qd_mode, dropout members};
//           forward: x, weight, bias, epi_qd, y; delta: x, weight, bias, epi_qd, g_out, delta, dqd;
//           input_grad: g_out, weight, g_in; weight_grad: x, g_out, g_weight; bias_grad: g_out, g_bias.
// Dispatch: forward_main grid_groups(batch·height·width·out_ch), input_grad_main
//           grid_groups(batch·height·width·in_ch) (256 threads, grid-stride); weight_grad_main
//           9·in_ch·ceil(out_ch / 4) workgroups, bias_grad_main ceil(out_ch / 4) workgroups of 64, both
//           as a 2-D grid (x, y) read as the linear index y·x_count + x (extra ones return);
//           delta_main as forward_main.

//! include lib/gate.wgsl
//! include lib/grid.wgsl
//! include lib/reduce.wgsl
//! include lib/conv3x3.wgsl
//! include lib/epilogue.wgsl
//! include lib/epilogue_dropout.wgsl

const REDUCE_SIZE: u32 = 64u;

struct Conv2dParams {
  batch: u32, height: u32, width: u32, in_ch: u32, out_ch: u32, qd_mode: u32,
  drop_threshold: u32, drop_scale: f32, drop_per_solve: u32, drop_salt: u32,
}

@group(0) @binding(1) var<uniform> params: Conv2dParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> g_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> g_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> g_weight: array<f32>;
@group(0) @binding(9) var<storage, read_write> g_bias: array<f32>;
@group(0) @binding(10) var<storage, read> epi_qd: array<f32>;
@group(0) @binding(11) var<storage, read_write> delta: array<f32>;
@group(0) @binding(12) var<storage, read_write> dqd: array<f32>;

fn conv_shape() -> ConvShape { return ConvShape(params.height, params.width, params.in_ch, params.out_ch); }
fn conv_x(i: u32) -> f32 { return x[i]; }

// g_out[p, o..o+3], 0 past out_ch.
fn g_out_quad(p: u32, o: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) {
    if (o + t < params.out_ch) { v[t] = g_out[p * params.out_ch + o + t]; }
  }
  return v;
}

// The workgroup's linear index in a 2-D grid.
fn group_index(wid: vec3u, groups: vec3u) -> u32 { return wid.y * groups.x + wid.x; }

@compute @workgroup_size(256)
fn forward_main(@builtin(global_invocation_id) id: vec3u, @builtin(local_invocation_index) lid: u32,
                @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let n = params.batch * params.height * params.width * params.out_ch;
  let key = epi_key();
  for (var e = id.x; e < n; e += grid_stride(groups)) { y[e] = epilogue_forward(conv_at(e), e, key); }
}

@compute @workgroup_size(256)
fn delta_main(@builtin(global_invocation_id) id: vec3u, @builtin(local_invocation_index) lid: u32,
              @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let n = params.batch * params.height * params.width * params.out_ch;
  let key = epi_key();
  for (var e = id.x; e < n; e += grid_stride(groups)) {
    let back = epilogue_adjoint(conv_at(e), g_out[e], e, key);
    delta[e] = back.x;
    if (params.qd_mode == 1u) { dqd[e] = back.y; }
    if (params.qd_mode == 2u) { dqd[e] += back.y; }
  }
}

@compute @workgroup_size(256)
fn input_grad_main(@builtin(global_invocation_id) id: vec3u, @builtin(local_invocation_index) lid: u32,
                   @builtin(num_workgroups) groups: vec3u) {
  if (gate_skip()) { return; }
  let co = params.out_ch;
  let ci = params.in_ch;
  let n = params.batch * params.height * params.width * ci;
  for (var e = id.x; e < n; e += grid_stride(groups)) {
    let c = e % ci;
    let px = pixel_of(e / ci);
    var sum = 0.0;
    for (var ky = 0u; ky < 3u; ky++) {
      for (var kx = 0u; kx < 3u; kx++) {
        // The output pixel whose (ky, kx) tap reads this input pixel.
        let q = shifted(px, 1 - i32(ky), 1 - i32(kx));
        if (q < 0) { continue; }
        let gb = u32(q) * co;
        let wb = ((ky * 3u + kx) * ci + c) * co;
        for (var o = 0u; o < co; o++) { sum += g_out[gb + o] * weight[wb + o]; }
      }
    }
    g_in[e] = sum;
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn weight_grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                    @builtin(num_workgroups) groups: vec3u) {
  if (gate_closed(lid)) { return; }
  let quads = (params.out_ch + 3u) / 4u;
  let index = group_index(wid, groups);
  if (index >= 9u * params.in_ch * quads) { return; }
  // index = (tap·in_ch + c)·quads + quad, tap = ky·3 + kx.
  let o = (index % quads) * 4u;
  let c = (index / quads) % params.in_ch;
  let tap = index / (quads * params.in_ch);
  let di = i32(tap / 3u) - 1;
  let dj = i32(tap % 3u) - 1;
  let pixels = params.batch * params.height * params.width;
  var acc = vec4<f32>(0.0);
  for (var p = lid; p < pixels; p += REDUCE_SIZE) {
    let q = shifted(pixel_of(p), di, dj);
    if (q < 0) { continue; }
    acc += x[u32(q) * params.in_ch + c] * g_out_quad(p, o);
  }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) {
    let base = (tap * params.in_ch + c) * params.out_ch + o;
    for (var t = 0u; t < 4u; t++) {
      if (o + t < params.out_ch) { g_weight[base + t] = total[t]; }
    }
  }
}

@compute @workgroup_size(REDUCE_SIZE)
fn bias_grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                  @builtin(num_workgroups) groups: vec3u) {
  if (gate_closed(lid)) { return; }
  let o = group_index(wid, groups) * 4u;
  if (o >= params.out_ch) { return; }
  let pixels = params.batch * params.height * params.width;
  var acc = vec4<f32>(0.0);
  for (var p = lid; p < pixels; p += REDUCE_SIZE) { acc += g_out_quad(p, o); }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) {
    for (var t = 0u; t < 4u; t++) {
      if (o + t < params.out_ch) { g_bias[o + t] = total[t]; }
    }
  }
}
