// The 3×3 convolution (stride 1, 'same' zero padding, NHWC images, HWIO kernel) in float64, with
// its exact VJP. Row-major throughout: x [rows, height, width, inChannels], weight
// [3, 3, inChannels, outChannels], bias [outChannels], y [rows, height, width, outChannels].

/** A 3×3 convolution: sizes and parameters. */
export interface RefConv2d {
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  /** [3, 3, inChannels, outChannels] row-major. */
  weight: Float64Array;
  /** [outChannels]. */
  bias: Float64Array;
}

function rowCount(conv: RefConv2d, x: ArrayLike<number>): number {
  const { height: h, width: w, inChannels: ci, outChannels: co } = conv;
  if (conv.weight.length !== 9 * ci * co) throw new Error(`weight must have ${9 * ci * co} entries, got ${conv.weight.length}`);
  if (conv.bias.length !== co) throw new Error(`bias must have ${co} entries, got ${conv.bias.length}`);
  if (x.length % (h * w * ci) !== 0) throw new Error(`x length ${x.length} is not a multiple of height·width·inChannels = ${h * w * ci}`);
  return x.length / (h * w * ci);
}

/**
 * Calls `visit(outIndex, inIndex, weightIndex)` for every (output element, input element, weight
 * element) product of the convolution, skipping the zero padding.
 */
function forEachTap(conv: RefConv2d, rows: number, visit: (o: number, i: number, k: number) => void): void {
  const { height: h, width: w, inChannels: ci, outChannels: co } = conv;
  for (let n = 0; n < rows; n++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ky = 0; ky < 3; ky++) {
          const sy = y + ky - 1;
          if (sy < 0 || sy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const sx = x + kx - 1;
            if (sx < 0 || sx >= w) continue;
            for (let c = 0; c < ci; c++) {
              const inIndex = ((n * h + sy) * w + sx) * ci + c;
              for (let o = 0; o < co; o++) {
                visit(((n * h + y) * w + x) * co + o, inIndex, ((ky * 3 + kx) * ci + c) * co + o);
              }
            }
          }
        }
      }
    }
  }
}

/** `y[n,i,j,o] = bias[o] + Σ_{ky,kx,c} x[n, i+ky−1, j+kx−1, c] · weight[ky,kx,c,o]` (0 outside the image). */
export function refConv2dForward(conv: RefConv2d, x: ArrayLike<number>): Float64Array {
  const rows = rowCount(conv, x);
  const co = conv.outChannels;
  const y = new Float64Array(rows * conv.height * conv.width * co);
  for (let e = 0; e < y.length; e++) y[e] = conv.bias[e % co];
  forEachTap(conv, rows, (o, i, k) => {
    y[o] += x[i] * conv.weight[k];
  });
  return y;
}

/** Cotangents of the convolution's input and parameters. */
export interface RefConv2dGrads {
  /** ∂x, [rows, height, width, inChannels]. */
  dx: Float64Array;
  /** ∂weight, [3, 3, inChannels, outChannels]. */
  dWeight: Float64Array;
  /** ∂bias, [outChannels]. */
  dBias: Float64Array;
}

/** VJP at `x` applied to `dy` ([rows, height, width, outChannels]). */
export function refConv2dVjp(conv: RefConv2d, x: ArrayLike<number>, dy: ArrayLike<number>): RefConv2dGrads {
  const rows = rowCount(conv, x);
  const co = conv.outChannels;
  if (dy.length !== rows * conv.height * conv.width * co) throw new Error(`dy must have ${rows * conv.height * conv.width * co} entries, got ${dy.length}`);
  const dx = new Float64Array(x.length);
  const dWeight = new Float64Array(conv.weight.length);
  const dBias = new Float64Array(co);
  for (let e = 0; e < dy.length; e++) dBias[e % co] += dy[e];
  forEachTap(conv, rows, (o, i, k) => {
    dx[i] += dy[o] * conv.weight[k];
    dWeight[k] += x[i] * dy[o];
  });
  return { dx, dWeight, dBias };
}
