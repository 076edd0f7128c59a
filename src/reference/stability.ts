// Float64 reference of the stability diagnostics: the tanh block's Jacobian rows and the spectral
// radius of a dense matrix by Gelfand's formula ρ(A) = lim ‖A^N‖^(1/N), with N = 2^squarings
// reached by repeated squaring (normalised at each step, its logarithm carried along). It holds
// for any square matrix, complex dominant eigenvalues included; the error is about
// log(condition) / N.
import { refBlockForward, type RefBlock } from './block';

/**
 * The Jacobian ∂f/∂u of the tanh block at (u, Qd), one d × d matrix per batch row (row-major,
 * J[j][k] = ∂y_j/∂u_k = (1 − y_j²) · w[k, j]); f's Jacobian over the batch is block diagonal.
 */
export function refBlockJacobianRows(block: RefBlock, u: Float64Array, Qd: Float64Array): Float64Array[] {
  const { d, w } = block;
  const y = refBlockForward(block, u, Qd);
  const rows: Float64Array[] = [];
  for (let r = 0; r < y.length / d; r++) {
    const J = new Float64Array(d * d);
    for (let j = 0; j < d; j++) {
      const slope = 1 - y[r * d + j] ** 2;
      for (let k = 0; k < d; k++) J[j * d + k] = slope * w[k * d + j];
    }
    rows.push(J);
  }
  return rows;
}

/** ρ of the n × n row-major matrix `a` (see the header). */
export function refSpectralRadius(a: Float64Array, n: number, squarings = 14): number {
  let m = Float64Array.from(a);
  let logScale = 0;
  const normalise = (): boolean => {
    let sum = 0;
    for (const x of m) sum += x * x;
    const norm = Math.sqrt(sum);
    if (norm === 0) return false;
    for (let i = 0; i < m.length; i++) m[i] /= norm;
    logScale += Math.log(norm);
    return true;
  };
  if (!normalise()) return 0;
  for (let s = 0; s < squarings; s++) {
    const next = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        const v = m[i * n + k];
        if (v === 0) continue;
        for (let j = 0; j < n; j++) next[i * n + j] += v * m[k * n + j];
      }
    }
    m = next;
    logScale *= 2;
    if (!normalise()) return 0;
  }
  return Math.exp(logScale / 2 ** squarings);
}
