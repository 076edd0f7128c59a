// A 3×3 convolution's forward at one output element, stride 1, 'same' zero padding, NHWC: the
// body of shaders/stages/conv2d.wgsl (the conv2d stage) and of shaders/picard_conv_step.wgsl
// (the same forward with Picard's step around it). Layouts, row-major: input
// [batch, height, width, in_ch], weight [3, 3, in_ch, out_ch] (HWIO), bias [out_ch].
// The includer supplies `fn conv_shape() -> ConvShape`, `fn conv_x(i: u32) -> f32` (element i of
// the input) and the bindings `weight` and `bias`.

struct ConvShape { height: u32, width: u32, in_ch: u32, out_ch: u32 }

// Pixel (n, i, j) of a linear pixel index p = (n·height + i)·width + j, as (n·height, i, j) rows.
fn pixel_of(p: u32) -> vec3u {
  let shape = conv_shape();
  let j = p % shape.width;
  let rest = p / shape.width;
  let i = rest % shape.height;
  return vec3u(rest - i, i, j);
}

// Linear pixel index of (n·height + i + di, j + dj), or -1 outside the image (zero padding).
fn shifted(px: vec3u, di: i32, dj: i32) -> i32 {
  let shape = conv_shape();
  let i = i32(px.y) + di;
  let j = i32(px.z) + dj;
  if (i < 0 || j < 0 || i >= i32(shape.height) || j >= i32(shape.width)) { return -1; }
  return (i32(px.x) + i) * i32(shape.width) + j;
}

// bias[o] + the convolution at output element e (pixel e / out_ch, channel e % out_ch).
fn conv_at(e: u32) -> f32 {
  let shape = conv_shape();
  let co = shape.out_ch;
  let ci = shape.in_ch;
  let o = e % co;
  let px = pixel_of(e / co);
  var sum = bias[o];
  for (var ky = 0u; ky < 3u; ky++) {
    for (var kx = 0u; kx < 3u; kx++) {
      let q = shifted(px, i32(ky) - 1, i32(kx) - 1);
      if (q < 0) { continue; }
      let xb = u32(q) * ci;
      let wb = (ky * 3u + kx) * ci * co + o;
      for (var c = 0u; c < ci; c++) { sum += conv_x(xb + c) * weight[wb + c * co]; }
    }
  }
  return sum;
}
