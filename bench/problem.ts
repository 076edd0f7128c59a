/**
 * The benchmark problem as plain arrays, so every contender (this engine, TF.js, the CPU loop)
 * solves exactly the same tanh block f(u) = tanh(u @ w + Qd + b) from the same data.
 */

/** One problem: a contractive d × d block and its injection for `rows` state rows. */
export interface BenchProblem {
  d: number;
  /** State rows (1 for an unbatched [d] state). */
  rows: number;
  /** d × d, row-major (w[k * d + j]). */
  w: Float32Array;
  /** d values. */
  b: Float32Array;
  /** rows × d. */
  Qd: Float32Array;
}

/** Deterministic values in [−scale, scale) from a linear congruential generator. */
export function seededValues(count: number, scale: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = ((state / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * The benchmark's block of width d (entries ±0.9/√d keep the spectral radius below 1, so every
 * solver converges) with `batch` rows (0 = an unbatched [d] state, one row).
 */
export function benchProblem(d: number, batch: number): BenchProblem {
  const rows = Math.max(batch, 1);
  return {
    d,
    rows,
    w: seededValues(d * d, 0.9 / Math.sqrt(d), 1),
    b: seededValues(d, 0.1, 2),
    Qd: seededValues(rows * d, 1, 3),
  };
}

/** Floating-point operations of one evaluation of f: the product u @ w dominates. */
export function flopsPerEval(d: number, rows: number): number {
  return 2 * rows * d * d;
}

/** Bytes one evaluation must move at least: w once, plus reading u and Qd and writing f(u). */
export function bytesPerEval(d: number, rows: number): number {
  return 4 * (d * d + 3 * rows * d + d);
}
