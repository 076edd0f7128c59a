// Small dense float64 helpers for the CPU oracle. Plain loops on purpose: the oracle must be
// obviously correct, not fast.

/** Euclidean norm of a vector. */
export function norm2(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** Dot product of two vectors of equal length. */
export function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

/** Elementwise `x + y`. */
export function add(x: Float64Array, y: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + y[i];
  return out;
}

/** Elementwise `x − y`. */
export function sub(x: Float64Array, y: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - y[i];
  return out;
}

/** `x + s·y`. */
export function axpy(x: Float64Array, s: number, y: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + s * y[i];
  return out;
}

/** LU factors of a square matrix with the row permutation of partial pivoting. */
export interface LuFactors {
  n: number;
  /** Combined L (unit diagonal, below) and U (on and above the diagonal), row-major n×n. */
  lu: Float64Array;
  /** perm[i] = original row that ended up in row i. */
  perm: Int32Array;
}

/**
 * LU factorisation with partial pivoting of a row-major n×n matrix (the input is not modified).
 * A zero pivot is left in place; solving then yields Inf/NaN, as a float64 LAPACK solve would.
 */
export function luFactor(a: Float64Array, n: number): LuFactors {
  const lu = Float64Array.from(a);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let k = 0; k < n; k++) {
    let p = k;
    let best = Math.abs(lu[k * n + k]);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(lu[i * n + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        const t = lu[k * n + j];
        lu[k * n + j] = lu[p * n + j];
        lu[p * n + j] = t;
      }
      const t = perm[k];
      perm[k] = perm[p];
      perm[p] = t;
    }
    const pivot = lu[k * n + k];
    for (let i = k + 1; i < n; i++) {
      const factor = lu[i * n + k] / pivot;
      lu[i * n + k] = factor;
      for (let j = k + 1; j < n; j++) lu[i * n + j] -= factor * lu[k * n + j];
    }
  }
  return { n, lu, perm };
}

/** Solve `A x = rhs` from the factors of {@link luFactor}. */
export function luSolve(f: LuFactors, rhs: Float64Array): Float64Array {
  const { n, lu, perm } = f;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = rhs[perm[i]];
    for (let j = 0; j < i; j++) s -= lu[i * n + j] * x[j];
    x[i] = s;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = x[i];
    for (let j = i + 1; j < n; j++) s -= lu[i * n + j] * x[j];
    x[i] = s / lu[i * n + i];
  }
  return x;
}

/** Solve the dense system `A x = rhs` (row-major n×n) by Gaussian elimination with partial pivoting. */
export function solveDense(a: Float64Array, rhs: Float64Array): Float64Array {
  return luSolve(luFactor(a, rhs.length), rhs);
}
