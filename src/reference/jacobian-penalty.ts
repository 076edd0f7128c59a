// Float64 reference of jacobianPenalty for the tanh block: the ±1 vectors exactly as
// shaders/jacobian_penalty.wgsl draws them, the exact Hutchinson estimate Σ_s ‖J v_s‖² / (S·n)
// with those vectors (no finite difference: J v is computed from the Jacobian's formula) and its
// exact parameter gradient, and the exact ‖J‖_F² / n the estimate's expectation equals.
import { refBlockForward, type RefBlock } from './block';
import { refRngStreamKey, refRngU32 } from './dropout';

/** The ±1 vector of sample `sample` for `seed`, n entries: +1 where bit 31 of the draw is set. */
export function refRademacher(seed: number, sample: number, n: number): Float64Array {
  const key = refRngStreamKey(seed, sample);
  return Float64Array.from({ length: n }, (_, i) => (refRngU32(key, i) >>> 31 === 1 ? 1 : -1));
}

/** The penalty estimate and the gradient of `weight` times it (uStar held constant). */
export interface RefJacobianPenalty {
  estimate: number;
  w: Float64Array;
  b: Float64Array;
  Qd: Float64Array;
}

/**
 * The tanh block's Hutchinson estimate with the vectors `vs` (each the state's length) at
 * (u, Qd), and its exact gradient. Per row, with y = tanh(z), s = 1 − y², a = v·w (so
 * (J v)_j = q_j = s_j a_j) and ∂s_j/∂z_j = −2 y_j s_j:
 * ∂‖q‖²/∂w[k, j] = 2 q_j s_j (v_k − 2 a_j y_j u_k), ∂‖q‖²/∂b_j = ∂‖q‖²/∂Qd_j = −4 q_j a_j y_j s_j.
 */
export function refBlockJacobianPenalty(block: RefBlock, u: Float64Array, Qd: Float64Array, vs: readonly Float64Array[], weight = 1): RefJacobianPenalty {
  const { d, w } = block;
  const y = refBlockForward(block, u, Qd);
  const n = u.length;
  const scale = 1 / (vs.length * n);
  const gw = new Float64Array(d * d);
  const gb = new Float64Array(d);
  const gq = new Float64Array(n);
  let sum = 0;
  for (const v of vs) {
    if (v.length !== n) throw new Error(`vectors must have the state's ${n} entries, got ${v.length}`);
    for (let r = 0; r < n / d; r++) {
      for (let j = 0; j < d; j++) {
        let a = 0;
        for (let k = 0; k < d; k++) a += v[r * d + k] * w[k * d + j];
        const yj = y[r * d + j];
        const s = 1 - yj * yj;
        const q = s * a;
        sum += q * q;
        const g = weight * scale;
        for (let k = 0; k < d; k++) gw[k * d + j] += g * 2 * q * s * (v[r * d + k] - 2 * a * yj * u[r * d + k]);
        const gz = g * -4 * q * a * yj * s;
        gb[j] += gz;
        gq[r * d + j] += gz;
      }
    }
  }
  return { estimate: sum * scale, w: gw, b: gb, Qd: gq };
}

/** ‖J_f‖_F² / n of the tanh block at (u, Qd) exactly: Σ_rows Σ_j (1 − y_j²)² Σ_k w[k, j]², over n = u.length. */
export function refBlockJacobianFrobenius(block: RefBlock, u: Float64Array, Qd: Float64Array): number {
  const { d, w } = block;
  const y = refBlockForward(block, u, Qd);
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    const j = i % d;
    let column = 0;
    for (let k = 0; k < d; k++) column += w[k * d + j] ** 2;
    sum += (1 - y[i] ** 2) ** 2 * column;
  }
  return sum / u.length;
}
