// Float64 reference of the weight reparametrisations (src/layers/weight-norms.ts). A weight is a
// rows × cols row-major matrix whose columns are the output features (linear [in, out]; conv2d
// HWIO [3, 3, in, out] as [9·in, out]).
//   Weight norm:   W[:, c] = g[c] · v[:, c] / ‖v[:, c]‖.
//   Spectral norm: W = g ⊙ v / σ with σ = leftᵀ·v·right for the power-iteration vectors, which
//                  the gradient holds constant (as PyTorch and TorchDEQ do); g is the target norm
//                  or a learned per-column scale.
// The largest singular value is computed independently, as √ρ(vᵀv) by Gelfand's formula.
import { refSpectralRadius } from './stability';

/** A rows × cols row-major matrix. */
export interface RefMatrix {
  rows: number;
  cols: number;
  values: Float64Array;
}

function columnNorms({ rows, cols, values }: RefMatrix): Float64Array {
  const norms = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) norms[c] += values[r * cols + c] ** 2;
  return norms.map(Math.sqrt);
}

/** W[:, c] = g[c] · v[:, c] / ‖v[:, c]‖ (a zero column gives a zero column). */
export function refWeightNorm(v: RefMatrix, g: ArrayLike<number>): Float64Array {
  const norms = columnNorms(v);
  return v.values.map((x, k) => {
    const c = k % v.cols;
    return norms[c] > 0 ? (g[c] * x) / norms[c] : 0;
  });
}

/** Gradients of a reparametrisation's trainable tensors. */
export interface RefNormGradients {
  dv: Float64Array;
  dg: Float64Array;
}

/** ∂v and ∂g of weight norm for the cotangent `dW` of the effective weight. */
export function refWeightNormVjp(v: RefMatrix, g: ArrayLike<number>, dW: ArrayLike<number>): RefNormGradients {
  const { rows, cols, values } = v;
  const norms = columnNorms(v);
  const dg = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dg[c] += (values[r * cols + c] * dW[r * cols + c]) / (norms[c] || 1);
  const dv = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (norms[c] === 0) continue;
      const k = r * cols + c;
      dv[k] = (g[c] / norms[c]) * (dW[k] - (values[k] / norms[c]) * dg[c]);
    }
  }
  return { dv, dg };
}

/** `leftᵀ · v · right`. */
export function refBilinear(v: RefMatrix, left: ArrayLike<number>, right: ArrayLike<number>): number {
  let s = 0;
  for (let r = 0; r < v.rows; r++) for (let c = 0; c < v.cols; c++) s += left[r] * v.values[r * v.cols + c] * right[c];
  return s;
}

/** The power-iteration vectors after `iterations` steps from `right` (left = v·right, right = vᵀ·left, normalised). */
export function refPowerIteration(v: RefMatrix, right: ArrayLike<number>, iterations: number, left: ArrayLike<number> = new Float64Array(v.rows)): { left: Float64Array; right: Float64Array; sigma: number } {
  const { rows, cols, values } = v;
  let l: Float64Array = Float64Array.from(left);
  let u: Float64Array = Float64Array.from(right);
  const normalised = (x: Float64Array): Float64Array => {
    const n = Math.hypot(...x);
    return n > 0 ? x.map((e) => e / n) : x;
  };
  for (let it = 0; it < iterations; it++) {
    const nl = new Float64Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) nl[r] += values[r * cols + c] * u[c];
    l = normalised(nl);
    const nu = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) nu[c] += values[r * cols + c] * l[r];
    u = normalised(nu);
  }
  return { left: l, right: u, sigma: refBilinear(v, l, u) };
}

/** W = g ⊙ v / σ, σ = leftᵀ·v·right (g per column). */
export function refSpectralNorm(v: RefMatrix, g: ArrayLike<number>, left: ArrayLike<number>, right: ArrayLike<number>): Float64Array {
  const sigma = refBilinear(v, left, right);
  return v.values.map((x, k) => (sigma > 0 ? (g[k % v.cols] * x) / sigma : 0));
}

/** ∂v and ∂g of {@link refSpectralNorm} for the cotangent `dW`, left and right held constant. */
export function refSpectralNormVjp(v: RefMatrix, g: ArrayLike<number>, left: ArrayLike<number>, right: ArrayLike<number>, dW: ArrayLike<number>): RefNormGradients {
  const { rows, cols, values } = v;
  const sigma = refBilinear(v, left, right);
  const s = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) s[c] += dW[r * cols + c] * values[r * cols + c];
  let coupling = 0;
  for (let c = 0; c < cols; c++) coupling += g[c] * s[c];
  const dv = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = r * cols + c;
      dv[k] = (g[c] * dW[k] - (coupling / sigma) * left[r] * right[c]) / sigma;
    }
  }
  return { dv, dg: s.map((x) => x / sigma) };
}

/** The largest singular value of v: √ρ(vᵀv). */
export function refLargestSingularValue(v: RefMatrix): number {
  const { rows, cols, values } = v;
  const gram = new Float64Array(cols * cols);
  for (let a = 0; a < cols; a++) {
    for (let b = 0; b < cols; b++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += values[r * cols + a] * values[r * cols + b];
      gram[a * cols + b] = s;
    }
  }
  return Math.sqrt(refSpectralRadius(gram, cols));
}

/**
 * Central finite differences of the scalar `loss` at `x` (step h): the float64 check of a
 * hand-derived gradient.
 */
export function refFiniteDifferences(loss: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  return x.map((_, i) => {
    const plus = Float64Array.from(x);
    const minus = Float64Array.from(x);
    plus[i] += h;
    minus[i] -= h;
    return (loss(plus) - loss(minus)) / (2 * h);
  });
}
