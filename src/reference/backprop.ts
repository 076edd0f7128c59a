// Float64 reference of the backpropagation wrappers (docs/architecture.md "Backprop semantics").
import { refBlockForward, refBlockVjp, type RefBlock } from './block';
import { luFactor, luSolve, norm2 } from './linalg';
import type { RefBroydenFactors } from './solvers';

/**
 * GDEQ preconditioning `g̃ = −(gᵀB) = g − (gᵀU)Vᵀ`, over the valid columns only.
 * With no valid column (picard/anderson, or an empty B) it returns a copy of `g`.
 */
export function refPreconditionGdeq(g: Float64Array, B: RefBroydenFactors): Float64Array {
  const dim = g.length;
  const out = Float64Array.from(g);
  for (let c = 0; c < B.L; c++) {
    if (!B.validMask[c]) continue;
    let gu = 0;
    for (let i = 0; i < dim; i++) gu += g[i] * B.Us[i * B.L + c];
    for (let i = 0; i < dim; i++) out[i] -= gu * B.VTs[c * dim + i];
  }
  return out;
}

/**
 * IFT adjoint: solve `λ = J_fᵀλ + ḡ` at `uStar`, i.e. `(I − J_fᵀ)λ = ḡ`.
 * The Jacobian of the tanh block is block-diagonal over batch rows (`J_rowᵀ = w·diag(1 − y²)`),
 * so each row is a dense d×d solve; that works even when the spectral radius of J is ≥ 1, where a
 * fixed-point iteration would diverge. Iterative refinement then runs until
 * `‖λ − J_fᵀλ − ḡ‖ ≤ eps·‖ḡ‖` or `maxIter` refinement steps.
 * @param opts eps (default 1e-14) and maxIter (default 3) of the refinement
 */
export function refIftAdjoint(
  block: RefBlock,
  uStar: Float64Array,
  Qd: Float64Array,
  gradUStar: Float64Array,
  opts: { eps?: number; maxIter?: number } = {},
): Float64Array {
  const eps = opts.eps ?? 1e-14;
  const maxIter = opts.maxIter ?? 3;
  const { d, w } = block;
  const y = refBlockForward(block, uStar, Qd);
  const rows = uStar.length / d;
  const lambda = new Float64Array(uStar.length);

  for (let r = 0; r < rows; r++) {
    // A = I − w·diag(1 − y²) for this row: (J_fᵀλ)_k = Σ_j w[k,j] (1 − y_j²) λ_j.
    const a = new Float64Array(d * d);
    for (let k = 0; k < d; k++) {
      for (let j = 0; j < d; j++) {
        const yj = y[r * d + j];
        a[k * d + j] = (k === j ? 1 : 0) - w[k * d + j] * (1 - yj * yj);
      }
    }
    const lu = luFactor(a, d);
    const rhs = gradUStar.slice(r * d, (r + 1) * d);
    const x = luSolve(lu, rhs);
    const rhsNorm = norm2(rhs);
    for (let it = 0; it < maxIter; it++) {
      const resid = new Float64Array(d);
      for (let k = 0; k < d; k++) {
        let s = rhs[k];
        for (let j = 0; j < d; j++) s -= a[k * d + j] * x[j];
        resid[k] = s;
      }
      if (norm2(resid) <= eps * rhsNorm) break;
      const corr = luSolve(lu, resid);
      for (let k = 0; k < d; k++) x[k] += corr[k];
    }
    lambda.set(x, r * d);
  }
  return lambda;
}

/** Gradients of a loss through the implicit layer, plus the recomputed `uStar` they belong to. */
export interface RefGrads {
  uStar: Float64Array;
  w: Float64Array;
  b: Float64Array;
  Qd: Float64Array;
}

/** JFB: recompute `uStar = f(uPrev)` and apply the VJP of (w, b, Qd) ↦ f(uPrev) to `gradUStar`. */
export function refJfb(block: RefBlock, Qd: Float64Array, uPrev: Float64Array, gradUStar: Float64Array): RefGrads {
  const vjp = refBlockVjp(block, uPrev, Qd, gradUStar);
  return { uStar: refBlockForward(block, uPrev, Qd), w: vjp.w, b: vjp.b, Qd: vjp.Qd };
}

/** GDEQ: JFB applied to the preconditioned cotangent `gradUStar − (gradUStarᵀU)Vᵀ`. */
export function refGdeq(
  block: RefBlock,
  Qd: Float64Array,
  uPrev: Float64Array,
  gradUStar: Float64Array,
  B: RefBroydenFactors | undefined,
): RefGrads {
  const g = B ? refPreconditionGdeq(gradUStar, B) : gradUStar;
  return refJfb(block, Qd, uPrev, g);
}

/** IFT: the VJP at the fixed point `uStar` applied to the adjoint λ of {@link refIftAdjoint}. */
export function refIft(
  block: RefBlock,
  Qd: Float64Array,
  uStar: Float64Array,
  gradUStar: Float64Array,
  opts?: { eps?: number; maxIter?: number },
): RefGrads {
  const lambda = refIftAdjoint(block, uStar, Qd, gradUStar, opts);
  const vjp = refBlockVjp(block, uStar, Qd, lambda);
  return { uStar: refBlockForward(block, uStar, Qd), w: vjp.w, b: vjp.b, Qd: vjp.Qd };
}
