// The CPU float64 oracle against the golden fixtures of the original JAX anchorax, plus
// finite-difference and line-search unit checks.
import { describe, expect, it } from 'vitest';
import {
  refAnderson,
  refArmijoLineSearch,
  refBlockForward,
  refBlockJtv,
  refBlockMap,
  refBlockVjp,
  refBroyden,
  refBroydenMatvec,
  refGdeq,
  refIft,
  refIftAdjoint,
  refJfb,
  refPicard,
  refPreconditionGdeq,
  type RefBlock,
  type RefMap,
  type RefSolveOptions,
  type RefSolveResult,
} from '../src/reference';
import { goldenRun, loadGolden, type GoldenCase, type GoldenGrad, type GoldenSolver } from './helpers/golden';

const SOLVERS: Record<GoldenSolver, (f: RefMap, u0: Float64Array, o?: RefSolveOptions) => RefSolveResult> = {
  picard: refPicard,
  anderson: refAnderson,
  broyden: refBroyden,
};

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** ‖a − b‖ / ‖b‖ */
function relErr(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function sumProduct(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Deterministic uniform(-1, 1) numbers (mulberry32), so the random tests are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

const golden = loadGolden();
const blockOf = (c: GoldenCase): RefBlock => ({ d: c.d, w: c.weight, b: c.bias });
const zeros = (c: GoldenCase): Float64Array => new Float64Array(c.rows * c.d);

/**
 * Solver options the golden gradients were computed with, found by matching the data (the
 * README names them only for gdeq_picard): every gradient ran its solver with eps 1e-6,
 * picard/anderson with max_depth 200, broyden with its default max_depth 50.
 */
const GRAD_SOLVE: Record<string, { solver: GoldenSolver; options: RefSolveOptions; gdeq: boolean }> = {
  jfb_picard: { solver: 'picard', options: { eps: 1e-6, maxDepth: 200 }, gdeq: false },
  jfb_anderson: { solver: 'anderson', options: { eps: 1e-6, maxDepth: 200 }, gdeq: false },
  jfb_broyden: { solver: 'broyden', options: { eps: 1e-6 }, gdeq: false },
  gdeq_broyden: { solver: 'broyden', options: { eps: 1e-6 }, gdeq: true },
  gdeq_broyden_full: { solver: 'broyden', options: { eps: 1e-6, lbfgsThres: null }, gdeq: true },
  gdeq_picard: { solver: 'picard', options: { eps: 1e-6, maxDepth: 200 }, gdeq: true },
};

function expectGradsClose(got: { w: Float64Array; b: Float64Array; Qd: Float64Array }, want: GoldenGrad, tol: number) {
  expect(relErr(got.w, want.dW)).toBeLessThanOrEqual(tol);
  expect(relErr(got.b, want.db)).toBeLessThanOrEqual(tol);
  expect(relErr(got.Qd, want.dQd)).toBeLessThanOrEqual(tol);
}

describe.each(golden.map((c) => [c.name, c] as const))('golden case %s', (_name, c) => {
  const block = blockOf(c);
  const f = refBlockMap(block, c.Qd);

  it.each(c.runs.map((r) => [r.name, r] as const))('run %s matches tnstep, uStar, uPrev and factors', (_n, run) => {
    const res = SOLVERS[run.solver](f, zeros(c), { ...run.options, returnB: true });
    expect(res.tnstep).toBe(run.tnstep);
    expect(maxAbsDiff(res.uStar, run.uStar)).toBeLessThanOrEqual(1e-9);
    expect(maxAbsDiff(res.uPrev, run.uPrev)).toBeLessThanOrEqual(1e-9);
    // The golden abs_residual is recomputed at the returned point.
    const resid = Math.hypot(...f(res.uStar).map((v, i) => v - res.uStar[i]));
    expect(Math.abs(resid - run.absResidual)).toBeLessThanOrEqual(1e-9 * Math.max(1, run.absResidual));
    expect(res.trace.abs.length).toBe(res.trace.rel.length);
    // The reported best residual never exceeds the first measurement (unless returnFinal).
    if (!run.options.returnFinal) expect(res.absResidual).toBeLessThanOrEqual(res.trace.abs[0]);

    if (run.solver !== 'broyden') {
      expect(res.B).toBeUndefined();
      return;
    }
    const B = res.B!;
    expect(B.L).toBe(run.L);
    expect(B.validMask).toEqual(run.validMask);
    // A converged return_final run keeps updating at float64's rounding floor, so its factors are
    // rounding noise (README); there only their action B·y ≈ −y is comparable.
    const factorsAreNoise = run.options.returnFinal === true && run.absResidual < 1e-12;
    if (factorsAreNoise) {
      const y = Float64Array.from({ length: c.rows * c.d }, rng(7));
      const want = refBroydenMatvec({ Us: run.Us!, VTs: run.VTs!, validMask: run.validMask!, L: run.L! }, y);
      expect(relErr(refBroydenMatvec(B, y), want)).toBeLessThanOrEqual(1e-5);
    } else {
      // |Us| reaches ~1e3 (ill-conditioned), so scale the tolerance by the factor's magnitude.
      expect(maxAbsDiff(B.Us, run.Us!)).toBeLessThanOrEqual(1e-9 * Math.max(1, maxAbs(run.Us!)));
      expect(maxAbsDiff(B.VTs, run.VTs!)).toBeLessThanOrEqual(1e-9 * Math.max(1, maxAbs(run.VTs!)));
    }
  });

  it('the line search ran extra evaluations where the hard case needs it', () => {
    const run = goldenRun(c, 'broyden_ls');
    const res = refBroyden(f, zeros(c), run.options);
    if (c.name === 'hard_d64_b8') expect(res.tnstep).toBeGreaterThan(res.nstep);
    else expect(res.tnstep).toBe(res.nstep); // s0 = 1 always accepted on the contractive case
    expect(res.tnstep).toBe(run.tnstep);
  });

  it.each(Object.keys(GRAD_SOLVE).map((n) => [n] as const))('gradient %s matches', (name) => {
    const want = c.grads[name];
    expect(want).toBeDefined();
    const spec = GRAD_SOLVE[name];
    const solved = SOLVERS[spec.solver](f, zeros(c), { ...spec.options, returnB: true });
    const got = spec.gdeq
      ? refGdeq(block, c.Qd, solved.uPrev, c.T, solved.B)
      : refJfb(block, c.Qd, solved.uPrev, c.T);
    // loss = sum(uStar * T) with uStar = f(uPrev) recomputed.
    expect(maxAbsDiff(got.uStar, refBlockForward(block, solved.uPrev, c.Qd))).toBe(0);
    expect(Math.abs(sumProduct(got.uStar, c.T) - want.loss)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want.loss)));
    expectGradsClose(got, want, 1e-6);
  });

  it('gdeq with Broyden factors differs from jfb, and equals it without factors', () => {
    const solved = refBroyden(f, zeros(c), { eps: 1e-6, returnB: true });
    const jfb = refJfb(block, c.Qd, solved.uPrev, c.T);
    const gdeq = refGdeq(block, c.Qd, solved.uPrev, c.T, solved.B);
    expect(relErr(gdeq.w, jfb.w)).toBeGreaterThan(1e-6);
    const none = refGdeq(block, c.Qd, solved.uPrev, c.T, undefined);
    expect(maxAbsDiff(none.w, jfb.w)).toBe(0);
    const empty = { ...solved.B!, validMask: solved.B!.validMask.map(() => false) };
    expect(maxAbsDiff(refPreconditionGdeq(c.T, empty), c.T)).toBe(0);
  });

  it('ift_exact matches the adjoint solve at the golden fixed point', () => {
    const want = c.grads.ift_exact;
    const uStar = want.uStar!;
    // The golden point is a tight fixed point.
    expect(maxAbsDiff(f(uStar), uStar)).toBeLessThanOrEqual(1e-10);
    const lambda = refIftAdjoint(block, uStar, c.Qd, c.T);
    // λ solves λ = J_fᵀλ + ḡ, even where the spectral radius exceeds 1 (hard case: 1.17).
    const jtl = refBlockJtv(block, uStar, c.Qd, lambda);
    const resid = lambda.map((v, i) => v - jtl[i] - c.T[i]);
    expect(maxAbs(resid)).toBeLessThanOrEqual(1e-12 * maxAbs(lambda));
    const got = refIft(block, c.Qd, uStar, c.T);
    expect(Math.abs(sumProduct(uStar, c.T) - want.loss)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want.loss)));
    expectGradsClose(got, want, 1e-6);
  });
});

describe('refBlockVjp', () => {
  it('matches central differences of refBlockForward (d=5, batch=3)', () => {
    const d = 5;
    const rows = 3;
    const r = rng(12345);
    const block: RefBlock = {
      d,
      w: Float64Array.from({ length: d * d }, () => (0.5 * r()) / Math.sqrt(d)), // ‖w‖ < 1: contractive
      b: Float64Array.from({ length: d }, r),
    };
    const u = Float64Array.from({ length: rows * d }, r);
    const Qd = Float64Array.from({ length: rows * d }, r);
    const gOut = Float64Array.from({ length: rows * d }, r);
    const vjp = refBlockVjp(block, u, Qd, gOut);

    // L(params) = sum(f(u, Qd; w, b) * gOut); its gradient is what the VJP returns.
    const h = 1e-6;
    const fd = (x: Float64Array, loss: () => number): Float64Array =>
      x.map((_, i) => {
        const keep = x[i];
        x[i] = keep + h;
        const up = loss();
        x[i] = keep - h;
        const down = loss();
        x[i] = keep;
        return (up - down) / (2 * h);
      });
    const loss = (): number => sumProduct(refBlockForward(block, u, Qd), gOut);
    const gw = fd(block.w, loss);
    const gb = fd(block.b, loss);
    const gQd = fd(Qd, loss);
    const gu = fd(u, loss);
    expect(relErr(vjp.w, gw)).toBeLessThanOrEqual(1e-6);
    expect(relErr(vjp.b, gb)).toBeLessThanOrEqual(1e-6);
    expect(relErr(vjp.Qd, gQd)).toBeLessThanOrEqual(1e-6);
    expect(relErr(vjp.u, gu)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(refBlockJtv(block, u, Qd, gOut), vjp.u)).toBe(0);
  });

  it('treats every batch row independently (unbatched = one row)', () => {
    const d = 4;
    const r = rng(99);
    const block: RefBlock = { d, w: Float64Array.from({ length: d * d }, r), b: Float64Array.from({ length: d }, r) };
    const u = Float64Array.from({ length: 2 * d }, r);
    const Qd = Float64Array.from({ length: 2 * d }, r);
    const both = refBlockForward(block, u, Qd);
    const second = refBlockForward(block, u.slice(d), Qd.slice(d));
    expect(maxAbsDiff(both.slice(d), second)).toBe(0);
    expect(() => refBlockForward(block, u, Qd.slice(d))).toThrow();
  });
});

describe('refArmijoLineSearch', () => {
  it('rejects s0, evaluates the untested quadratic step, then accepts the halved cubic step', () => {
    // g(x) = 1 − 3x from x = 0 along update = g(0) = 1: φ(1) = 4 > φ0 = 1, s1 = φ0/(2φ(1)) = 1/8.
    const g = (x: Float64Array): Float64Array => x.map((v) => 1 - 3 * v);
    const x = new Float64Array([0]);
    const gx = g(x);
    const out = refArmijoLineSearch(g, x, gx, Float64Array.from(gx), true);
    expect(out.extraEvals).toBe(2); // s1, then one cubic (halved) step
    expect(out.s).toBe(1 / 16);
    expect(out.x[0]).toBe(1 / 16);
    expect(out.gx[0]).toBe(1 - 3 / 16);
  });

  it('clamps to amin after the accept test and returns the unclamped step residual (documented quirk)', () => {
    // g(x) = 1 + 5x: every step increases φ; s1 = 1/72 > amin, the halved step 1/144 < amin is rejected.
    const g = (x: Float64Array): Float64Array => x.map((v) => 1 + 5 * v);
    const x = new Float64Array([0]);
    const gx = g(x);
    const out = refArmijoLineSearch(g, x, gx, Float64Array.from(gx), true);
    expect(out.extraEvals).toBe(2);
    expect(out.s).toBe(1e-2);
    expect(out.x[0]).toBe(1e-2);
    expect(out.gx[0]).toBeCloseTo(1 + 5 / 144, 15); // not g(0.01) = 1.05
  });

  it('returns the unclamped quadratic step when it is already below amin', () => {
    // g(x) = 1 + 1000x: s1 = 1/(2·1001²) < amin, so no cubic step runs.
    const g = (x: Float64Array): Float64Array => x.map((v) => 1 + 1000 * v);
    const x = new Float64Array([0]);
    const gx = g(x);
    const out = refArmijoLineSearch(g, x, gx, Float64Array.from(gx), true);
    const s1 = 1 / (2 * 1001 * 1001);
    expect(out.extraEvals).toBe(1);
    expect(out.s).toBeCloseTo(s1, 18);
    expect(out.gx[0]).toBeCloseTo(1 + 1000 * s1, 14);
  });

  it('takes s = 1 with no extra evaluations when off', () => {
    const g = (x: Float64Array): Float64Array => x.map((v) => 1 - 3 * v);
    const x = new Float64Array([0]);
    const out = refArmijoLineSearch(g, x, g(x), new Float64Array([1]), false);
    expect(out).toMatchObject({ s: 1, extraEvals: 0 });
    expect(out.gx[0]).toBe(-2);
  });
});

describe('solver bookkeeping', () => {
  const c = golden[0];
  const f = refBlockMap(blockOf(c), c.Qd);

  it('picard measures diffs(u′, u′ − u): rel divides by ‖2u′ − u‖', () => {
    const res = refPicard(f, zeros(c), { maxDepth: 1 });
    const u1 = f(zeros(c));
    const abs = Math.hypot(...u1);
    const rel = abs / (Math.hypot(...u1.map((v) => 2 * v)) + 1e-9);
    expect(res.trace.abs).toHaveLength(2);
    expect(res.trace.abs[1]).toBeCloseTo(abs, 14);
    expect(res.trace.rel[1]).toBeCloseTo(rel, 14);
    expect(res.tnstep).toBe(2);
    expect(res.converged).toBe(false);
  });

  it("anderson's initial measure is diffs(u1, r0): rel divides by ‖2u1 − u0‖", () => {
    const res = refAnderson(f, zeros(c), { maxDepth: 1 });
    const u1 = f(zeros(c));
    expect(res.tnstep).toBe(1);
    expect(res.trace.rel).toHaveLength(1);
    expect(res.trace.rel[0]).toBeCloseTo(Math.hypot(...u1) / (Math.hypot(...u1.map((v) => 2 * v)) + 1e-9), 14);
    expect(maxAbsDiff(res.uStar, u1)).toBe(0);
  });

  it('"better" is strictly lower: a tie keeps the earlier iterate', () => {
    // f(u) = u + 1: every picard step measures the same abs residual 1.
    const shift: RefMap = (u) => u.map((v) => v + 1);
    const res = refPicard(shift, new Float64Array([0]), { eps: 0.5, maxDepth: 3 });
    expect(res.trace.abs).toEqual([1, 1, 1, 1]);
    expect(res.uStar[0]).toBe(0);
    const last = refPicard(shift, new Float64Array([0]), { eps: 0.5, maxDepth: 3, returnFinal: true });
    expect(last.uStar[0]).toBe(3);
    expect(last.uPrev[0]).toBe(2);
  });

  it('reports convergence, best residuals and returnFinal consistently', () => {
    const best = refAnderson(f, zeros(c), { eps: 1e-8 });
    expect(best.converged).toBe(true);
    expect(best.absResidual).toBe(Math.min(...best.trace.abs));
    expect(best.relResidual).toBe(Math.min(...best.trace.rel));
    const last = refBroyden(f, zeros(c), { returnFinal: true, maxDepth: 7 });
    expect(last.nstep).toBe(7);
    expect(last.absResidual).toBe(last.trace.abs[last.trace.abs.length - 1]);
    expect(last.trace.abs).toHaveLength(8);
  });
});
