// The dense layer y = x·W + b in float64, with its exact VJP. Row-major throughout:
// x [rows, in], W [in, out] (W[k*out + j]), b [out], y [rows, out].

/** Parameters of a dense layer: `W` is inFeatures × outFeatures row-major, `b` has outFeatures entries. */
export interface RefLinear {
  inFeatures: number;
  outFeatures: number;
  W: Float64Array;
  b: Float64Array;
}

function rowCount(layer: RefLinear, x: ArrayLike<number>): number {
  const { inFeatures: n, outFeatures: m } = layer;
  if (layer.W.length !== n * m) throw new Error(`W must have ${n * m} entries, got ${layer.W.length}`);
  if (layer.b.length !== m) throw new Error(`b must have ${m} entries, got ${layer.b.length}`);
  if (x.length % n !== 0) throw new Error(`x length ${x.length} is not a multiple of inFeatures=${n}`);
  return x.length / n;
}

/** `y = x·W + b` for every row of `x` ([rows, in] row-major). */
export function refLinearForward(layer: RefLinear, x: ArrayLike<number>): Float64Array {
  const { inFeatures: n, outFeatures: m, W, b } = layer;
  const rows = rowCount(layer, x);
  const y = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m; j++) {
      let s = b[j];
      for (let k = 0; k < n; k++) s += x[r * n + k] * W[k * m + j];
      y[r * m + j] = s;
    }
  }
  return y;
}

/** Cotangents of the dense layer's input and parameters. */
export interface RefLinearGrads {
  /** ∂x = dy·Wᵀ, [rows, in]. */
  dx: Float64Array;
  /** ∂W = xᵀ·dy, [in, out]. */
  dW: Float64Array;
  /** ∂b = Σ_rows dy, [out]. */
  db: Float64Array;
}

/** VJP at `x` applied to `dy` ([rows, out]). */
export function refLinearVjp(layer: RefLinear, x: ArrayLike<number>, dy: ArrayLike<number>): RefLinearGrads {
  const { inFeatures: n, outFeatures: m, W } = layer;
  const rows = rowCount(layer, x);
  if (dy.length !== rows * m) throw new Error(`dy must have ${rows * m} entries, got ${dy.length}`);
  const dx = new Float64Array(rows * n);
  const dW = new Float64Array(n * m);
  const db = new Float64Array(m);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m; j++) {
      const g = dy[r * m + j];
      db[j] += g;
      for (let k = 0; k < n; k++) {
        dx[r * n + k] += g * W[k * m + j];
        dW[k * m + j] += x[r * n + k] * g;
      }
    }
  }
  return { dx, dW, db };
}
