// The Armijo backtracking line search used by Broyden with `ls: true`, exactly as docs/architecture.md ("Solver semantics")
// describes it, quirks included (the returned residual may belong to an unclamped step).
import { axpy, dot } from './linalg';

/** Outcome of one line search along `update` from `x`. */
export interface RefLineSearchResult {
  /** The new point `x + s·update` with the final (clamped) step. */
  x: Float64Array;
  /** The last residual evaluated; after a clamp it belongs to the unclamped step, not to `x`. */
  gx: Float64Array;
  /** The final step length. */
  s: number;
  /** Evaluations of g beyond the first one (0 when s0 = 1 is accepted). */
  extraEvals: number;
}

const C1 = 1e-4;
const AMIN = 1e-2;

/**
 * Armijo line search on `φ(s) = ‖g(x + s·update)‖²` with `φ0 = gxᵀgx`, `φ'0 = −φ0`.
 * With `on = false` it takes the plain step s = 1 with no extra evaluations.
 * @param g the residual map `g(u) = f(u) − u`
 */
export function refArmijoLineSearch(
  g: (u: Float64Array) => Float64Array,
  x: Float64Array,
  gx: Float64Array,
  update: Float64Array,
  on: boolean,
): RefLineSearchResult {
  const evalAt = (s: number): { gs: Float64Array; phi: number } => {
    const gs = g(axpy(x, s, update));
    return { gs, phi: dot(gs, gs) };
  };

  const s0 = 1;
  const first = evalAt(s0);
  if (!on) return { x: axpy(x, s0, update), gx: first.gs, s: s0, extraEvals: 0 };

  const phi0 = dot(gx, gx);
  const dphi0 = -phi0;
  const armijo = (s: number, phi: number): boolean => phi <= phi0 + C1 * s * dphi0;
  if (armijo(s0, first.phi)) return { x: axpy(x, s0, update), gx: first.gs, s: s0, extraEvals: 0 };

  // Minimiser of the quadratic through φ0, φ'0 and φ(s0); evaluated but not accept-tested.
  let sOld = s0;
  let phiOld = first.phi;
  let s = (-dphi0 * s0 * s0) / (2 * (first.phi - phi0 - dphi0 * s0));
  let last = evalAt(s);
  let extraEvals = 1;
  let accepted = false;

  while (s > AMIN && !accepted) {
    // Cubic through φ0, φ'0 and the last two (s, φ) pairs.
    const factor = sOld * sOld * s * s * (s - sOld);
    const t1 = last.phi - phi0 - dphi0 * s;
    const t0 = phiOld - phi0 - dphi0 * sOld;
    const a = (sOld * sOld * t1 - s * s * t0) / factor;
    const b = (-sOld * sOld * sOld * t1 + s * s * s * t0) / factor;
    let sNext = (-b + Math.sqrt(Math.abs(b * b - 3 * a * dphi0))) / (3 * a);
    // Safeguard; the two tests cover every non-NaN sNext, so in effect the step halves.
    if (s - sNext > s / 2 || 1 - sNext / s < 0.96) sNext = s / 2;

    const next = evalAt(sNext);
    extraEvals++;
    accepted = armijo(sNext, next.phi);
    sOld = s;
    phiOld = last.phi;
    last = next;
    // Clamp only after the accept test (Math.max propagates NaN like jnp.maximum).
    s = Math.max(AMIN, sNext);
  }
  return { x: axpy(x, s, update), gx: last.gs, s, extraEvals };
}
