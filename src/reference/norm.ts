// Group and layer normalisation in float64, with their exact VJPs. Rows are [spatial, channels]
// row-major (NHWC); group g holds channels [g·cg, (g+1)·cg), cg = channels / groups. Layer
// normalisation of a row of d features is group normalisation with one group, d channels and
// spatial 1.

/** Group normalisation: `groups` must divide `gamma.length` (the channel count). */
export interface RefGroupNorm {
  groups: number;
  /** [channels]. */
  gamma: Float64Array;
  /** [channels]. */
  beta: Float64Array;
  eps: number;
}

/** Layer normalisation over rows of `gamma.length` features. */
export interface RefLayerNorm {
  gamma: Float64Array;
  beta: Float64Array;
  eps: number;
}

/** Cotangents of a normalisation's input and parameters. */
export interface RefNormGrads {
  /** ∂x, like x. */
  dx: Float64Array;
  /** ∂gamma, [channels]. */
  dGamma: Float64Array;
  /** ∂beta, [channels]. */
  dBeta: Float64Array;
}

interface Layout {
  rows: number;
  spatial: number;
  channels: number;
  cg: number;
}

function layout(norm: RefGroupNorm, x: ArrayLike<number>, rows: number): Layout {
  const channels = norm.gamma.length;
  if (norm.beta.length !== channels) throw new Error(`beta must have ${channels} entries, got ${norm.beta.length}`);
  if (!Number.isInteger(norm.groups) || norm.groups < 1 || channels % norm.groups !== 0) throw new Error(`groups ${norm.groups} must divide ${channels}`);
  const spatial = x.length / (rows * channels);
  if (!Number.isInteger(spatial) || spatial < 1) throw new Error(`x length ${x.length} is not rows·spatial·channels for rows ${rows}, channels ${channels}`);
  return { rows, spatial, channels, cg: channels / norm.groups };
}

/** Indices into x of the elements of (row n, group g). */
function members(l: Layout, n: number, g: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < l.spatial; s++) {
    for (let k = 0; k < l.cg; k++) out.push((n * l.spatial + s) * l.channels + g * l.cg + k);
  }
  return out;
}

/** x̂ = (x − μ)/√(σ² + eps) per (row, group), with 1/√(σ² + eps) of each element's group. */
function normalise(norm: RefGroupNorm, x: ArrayLike<number>, l: Layout): { xhat: Float64Array; rstd: Float64Array } {
  const xhat = new Float64Array(x.length);
  const rstd = new Float64Array(x.length);
  for (let n = 0; n < l.rows; n++) {
    for (let g = 0; g < norm.groups; g++) {
      const idx = members(l, n, g);
      const mean = idx.reduce((s, i) => s + x[i], 0) / idx.length;
      const variance = idx.reduce((s, i) => s + (x[i] - mean) ** 2, 0) / idx.length;
      const r = 1 / Math.sqrt(variance + norm.eps);
      for (const i of idx) {
        xhat[i] = (x[i] - mean) * r;
        rstd[i] = r;
      }
    }
  }
  return { xhat, rstd };
}

/** `y = (x − μ)/√(σ² + eps)·gamma[c] + beta[c]` for `rows` rows of x, biased σ² per (row, group). */
export function refGroupNormForward(norm: RefGroupNorm, x: ArrayLike<number>, rows: number): Float64Array {
  const l = layout(norm, x, rows);
  const { xhat } = normalise(norm, x, l);
  return xhat.map((v, i) => v * norm.gamma[i % l.channels] + norm.beta[i % l.channels]);
}

/** VJP at `x` ([rows, spatial, channels]) applied to `dy` (like x). */
export function refGroupNormVjp(norm: RefGroupNorm, x: ArrayLike<number>, dy: ArrayLike<number>, rows: number): RefNormGrads {
  const l = layout(norm, x, rows);
  if (dy.length !== x.length) throw new Error(`dy must have ${x.length} entries, got ${dy.length}`);
  const { xhat, rstd } = normalise(norm, x, l);
  const dx = new Float64Array(x.length);
  const dGamma = new Float64Array(l.channels);
  const dBeta = new Float64Array(l.channels);
  for (let i = 0; i < x.length; i++) {
    dGamma[i % l.channels] += dy[i] * xhat[i];
    dBeta[i % l.channels] += dy[i];
  }
  for (let n = 0; n < l.rows; n++) {
    for (let g = 0; g < norm.groups; g++) {
      const idx = members(l, n, g);
      // d = ∂x̂; ∂x = r·(d − mean(d) − x̂·mean(d·x̂)).
      const d = idx.map((i) => dy[i] * norm.gamma[i % l.channels]);
      const meanD = d.reduce((s, v) => s + v, 0) / idx.length;
      const meanDx = d.reduce((s, v, j) => s + v * xhat[idx[j]], 0) / idx.length;
      idx.forEach((i, j) => {
        dx[i] = rstd[i] * (d[j] - meanD - xhat[i] * meanDx);
      });
    }
  }
  return { dx, dGamma, dBeta };
}

function asGroupNorm(norm: RefLayerNorm): RefGroupNorm {
  return { groups: 1, gamma: norm.gamma, beta: norm.beta, eps: norm.eps };
}

function layerRows(norm: RefLayerNorm, x: ArrayLike<number>): number {
  const rows = x.length / norm.gamma.length;
  if (!Number.isInteger(rows)) throw new Error(`x length ${x.length} is not a multiple of ${norm.gamma.length}`);
  return rows;
}

/** `y = (x − μ)/√(σ² + eps)·gamma + beta` per row of `gamma.length` features. */
export function refLayerNormForward(norm: RefLayerNorm, x: ArrayLike<number>): Float64Array {
  return refGroupNormForward(asGroupNorm(norm), x, layerRows(norm, x));
}

/** VJP of {@link refLayerNormForward} at `x` applied to `dy`. */
export function refLayerNormVjp(norm: RefLayerNorm, x: ArrayLike<number>, dy: ArrayLike<number>): RefNormGrads {
  return refGroupNormVjp(asGroupNorm(norm), x, dy, layerRows(norm, x));
}
