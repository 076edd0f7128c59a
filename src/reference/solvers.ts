// Float64 reference implementations of the three fixed-point solvers, written straight from
// docs/architecture.md "Solver semantics". They are the oracle the GPU solvers and the golden data check.
import { refArmijoLineSearch } from './linesearch';
import { add, norm2, solveDense, sub } from './linalg';

/** f on the flattened state (all batch rows together). */
export type RefMap = (u: Float64Array) => Float64Array;

/** Solver options; each solver ignores the ones that do not apply to it, as the original does. */
export interface RefSolveOptions {
  eps?: number;
  maxDepth?: number;
  stopMode?: 'abs' | 'rel';
  returnFinal?: boolean;
  returnB?: boolean;
  /** Broyden: memory (columns of U); `null` means `maxDepth`. */
  lbfgsThres?: number | null;
  /** Broyden: Armijo line search. */
  ls?: boolean;
  /** Anderson: history length m (the ring buffer has m + 1 slots). */
  windowSize?: number;
  /** Anderson: Tikhonov term of the Gram matrix. */
  reg?: number;
  /** Anderson: β in `u' = (1−β)Σαx + βΣαf(x)`. */
  mixingParam?: number;
  /** Anderson: clear the history whenever it is full. */
  restarting?: boolean;
}

/** Broyden factors: `B·y = −y + U(Vᵀy)` over the valid columns. */
export interface RefBroydenFactors {
  /** U, dim×L row-major. */
  Us: Float64Array;
  /** Vᵀ, L×dim row-major. */
  VTs: Float64Array;
  validMask: boolean[];
  L: number;
}

/** What every reference solver returns. */
export interface RefSolveResult {
  uStar: Float64Array;
  uPrev: Float64Array;
  /** Evaluations of f, counted as docs/architecture.md says ("Solver semantics"). */
  tnstep: number;
  nstep: number;
  /** Lowest abs residual seen (with returnFinal: the last measured one). */
  absResidual: number;
  /** Lowest rel residual seen (with returnFinal: the last measured one). */
  relResidual: number;
  /** The last measured stop-mode value is below eps. */
  converged: boolean;
  /** Every measurement in order, the initial one first. */
  trace: { abs: number[]; rel: number[] };
  /** Best Broyden factors (Broyden with returnB only). */
  B?: RefBroydenFactors;
  /** Broyden: the step s of every iteration (1 without the line search; a clamped one is amin). */
  steps?: number[];
}

interface Measure {
  abs: number;
  rel: number;
}

/** `abs = ‖r‖₂`, `rel = abs / (‖r + u‖₂ + 1e-9)`. */
function diffs(u: Float64Array, r: Float64Array): Measure {
  const abs = norm2(r);
  return { abs, rel: abs / (norm2(add(r, u)) + 1e-9) };
}

/** Stopping and best-so-far bookkeeping shared by the three solvers. */
class Progress {
  readonly trace = { abs: [] as number[], rel: [] as number[] };
  bestAbs: number;
  bestRel: number;
  private bestCurrent: number;
  current: number;

  constructor(
    private readonly stopMode: 'abs' | 'rel',
    private readonly returnFinal: boolean,
    first: Measure,
  ) {
    this.push(first);
    this.bestAbs = first.abs;
    this.bestRel = first.rel;
    this.current = this.pick(first);
    this.bestCurrent = this.current;
  }

  private pick(m: Measure): number {
    return this.stopMode === 'abs' ? m.abs : m.rel;
  }

  private push(m: Measure): void {
    this.trace.abs.push(m.abs);
    this.trace.rel.push(m.rel);
  }

  /** Record a new iterate's measure; returns whether it is "better" (becomes the best). */
  record(m: Measure): boolean {
    this.push(m);
    this.current = this.pick(m);
    if (this.returnFinal) {
      this.bestAbs = m.abs;
      this.bestRel = m.rel;
      this.bestCurrent = this.current;
      return true;
    }
    // Each measure keeps its own minimum; only the stop-mode one picks the returned iterate.
    if (m.abs < this.bestAbs) this.bestAbs = m.abs;
    if (m.rel < this.bestRel) this.bestRel = m.rel;
    if (this.current < this.bestCurrent) {
      this.bestCurrent = this.current;
      return true;
    }
    return false;
  }
}

/** A returned iterate and the one it was computed from. */
interface Iterate {
  u: Float64Array;
  prev: Float64Array;
}

interface Common {
  eps: number;
  maxDepth: number;
  stopMode: 'abs' | 'rel';
  returnFinal: boolean;
}

function common(opts: RefSolveOptions, defaultDepth: number): Common {
  return {
    eps: opts.eps ?? 1e-3,
    maxDepth: opts.maxDepth ?? defaultDepth,
    stopMode: opts.stopMode ?? 'abs',
    returnFinal: opts.returnFinal ?? false,
  };
}

function finish(
  progress: Progress,
  eps: number,
  best: Iterate,
  tnstep: number,
  nstep: number,
): RefSolveResult {
  return {
    uStar: best.u,
    uPrev: best.prev,
    tnstep,
    nstep,
    absResidual: progress.bestAbs,
    relResidual: progress.bestRel,
    converged: progress.current < eps,
    trace: progress.trace,
  };
}

/**
 * Picard iteration `u ← f(u)`. Each step measures diffs(u', u' − u), so its rel divides by
 * ‖2u' − u‖ (as the original does). Defaults: eps 1e-3, stopMode 'abs', maxDepth 100.
 */
export function refPicard(f: RefMap, u0: Float64Array, opts: RefSolveOptions = {}): RefSolveResult {
  const { eps, maxDepth, stopMode, returnFinal } = common(opts, 100);
  let u: Float64Array = Float64Array.from(u0);
  const progress = new Progress(stopMode, returnFinal, diffs(u, sub(f(u), u)));
  let best: Iterate = { u, prev: u };
  let tnstep = 1;
  let nstep = 0;
  while (progress.current >= eps && nstep < maxDepth) {
    const next = f(u);
    if (progress.record(diffs(next, sub(next, u)))) best = { u: next, prev: u };
    u = next;
    nstep++;
    tnstep++;
  }
  return finish(progress, eps, best, tnstep, nstep);
}

/**
 * Anderson acceleration with a ring buffer of m + 1 slots and one α for the whole batch.
 * Defaults: eps 1e-3, stopMode 'abs', maxDepth 100, windowSize 2, reg 1e-8, mixingParam 1,
 * restarting false.
 */
export function refAnderson(f: RefMap, u0: Float64Array, opts: RefSolveOptions = {}): RefSolveResult {
  const { eps, maxDepth, stopMode, returnFinal } = common(opts, 100);
  const m = opts.windowSize ?? 2;
  const reg = opts.reg ?? 1e-8;
  const beta = opts.mixingParam ?? 1;
  const restarting = opts.restarting ?? false;
  const slots = m + 1;
  const dim = u0.length;

  const xs: Float64Array[] = [];
  const fxs: Float64Array[] = [];
  const res: Float64Array[] = [];
  for (let i = 0; i < slots; i++) {
    xs.push(new Float64Array(dim));
    fxs.push(new Float64Array(dim));
    res.push(new Float64Array(dim));
  }
  const write = (slot: number, x: Float64Array, fx: Float64Array, r: Float64Array): void => {
    xs[slot].set(x);
    fxs[slot].set(fx);
    res[slot].set(r);
  };

  const x0 = Float64Array.from(u0);
  const u1 = f(x0);
  const r0 = sub(u1, x0);
  write(0, x0, u1, r0);
  let len = 1;
  let ptr = 1;
  const progress = new Progress(stopMode, returnFinal, diffs(u1, r0));
  let best: Iterate = { u: u1, prev: x0 };
  let u: Float64Array = u1;
  let tnstep = 1;
  let nstep = 1;

  while (progress.current >= eps && nstep < maxDepth) {
    const fu = f(u);
    const r = sub(fu, u);
    write(ptr, u, fu, r);
    ptr = (ptr + 1) % slots;
    len = Math.min(len + 1, slots);

    const alpha = andersonWeights(res, len, reg);
    const next = new Float64Array(dim);
    for (let i = 0; i < len; i++) {
      for (let k = 0; k < dim; k++) next[k] += alpha[i] * ((1 - beta) * xs[i][k] + beta * fxs[i][k]);
    }

    if (restarting && len === slots) {
      // Keep only this iteration's entry, moved to slot 0.
      write(0, u, fu, r);
      len = 1;
      ptr = 1;
    }

    if (progress.record(diffs(next, sub(f(next), next)))) best = { u: next, prev: u };
    tnstep += 2;
    nstep++;
    u = next;
  }
  return finish(progress, eps, best, tnstep, nstep);
}

/**
 * Mixing weights: solve `(F Fᵀ + reg·I) α = valid` over all m + 1 rows (invalid rows zero),
 * zero the invalid entries and normalise by `Σα + 1e-12`.
 */
function andersonWeights(res: Float64Array[], len: number, reg: number): Float64Array {
  const n = res.length;
  const gram = new Float64Array(n * n);
  const rhs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    rhs[i] = i < len ? 1 : 0;
    for (let j = 0; j < n; j++) {
      let s = 0;
      if (i < len && j < len) for (let k = 0; k < res[i].length; k++) s += res[i][k] * res[j][k];
      gram[i * n + j] = s + (i === j ? reg : 0);
    }
  }
  const alpha = solveDense(gram, rhs);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (i >= len) alpha[i] = 0;
    sum += alpha[i];
  }
  for (let i = 0; i < n; i++) alpha[i] /= sum + 1e-12;
  return alpha;
}

/** `B·y = −y + U(Vᵀy)` over the valid columns. */
function bMatvec(F: RefBroydenFactors, y: Float64Array): Float64Array {
  const dim = y.length;
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) out[i] = -y[i];
  for (let c = 0; c < F.L; c++) {
    if (!F.validMask[c]) continue;
    let vy = 0;
    for (let i = 0; i < dim; i++) vy += F.VTs[c * dim + i] * y[i];
    for (let i = 0; i < dim; i++) out[i] += F.Us[i * F.L + c] * vy;
  }
  return out;
}

/** `yᵀB = −yᵀ + (yᵀU)Vᵀ` over the valid columns. */
function bRmatvec(F: RefBroydenFactors, y: Float64Array): Float64Array {
  const dim = y.length;
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) out[i] = -y[i];
  for (let c = 0; c < F.L; c++) {
    if (!F.validMask[c]) continue;
    let yu = 0;
    for (let i = 0; i < dim; i++) yu += y[i] * F.Us[i * F.L + c];
    for (let i = 0; i < dim; i++) out[i] += yu * F.VTs[c * dim + i];
  }
  return out;
}

function cloneFactors(F: RefBroydenFactors): RefBroydenFactors {
  return { Us: Float64Array.from(F.Us), VTs: Float64Array.from(F.VTs), validMask: [...F.validMask], L: F.L };
}

/** NaN/±Inf → 0, as the original does for the new rank-one factors. */
function finiteOrZero(x: Float64Array): Float64Array {
  return x.map((v) => (Number.isFinite(v) ? v : 0));
}

/**
 * Limited-memory Broyden on the flattened state, with an optional Armijo line search.
 * Its first evaluation of f is not counted in tnstep. Defaults: eps 1e-3, stopMode 'abs',
 * maxDepth 50, lbfgsThres 3 (null = maxDepth), ls false.
 */
export function refBroyden(f: RefMap, u0: Float64Array, opts: RefSolveOptions = {}): RefSolveResult {
  const { eps, maxDepth, stopMode, returnFinal } = common(opts, 50);
  const L = opts.lbfgsThres === null ? maxDepth : (opts.lbfgsThres ?? 3);
  const ls = opts.ls ?? false;
  const dim = u0.length;
  const g = (u: Float64Array): Float64Array => sub(f(u), u);

  let x: Float64Array = Float64Array.from(u0);
  let gx = g(x);
  const F: RefBroydenFactors = {
    Us: new Float64Array(dim * L),
    VTs: new Float64Array(L * dim),
    validMask: new Array<boolean>(L).fill(false),
    L,
  };
  let update = gx;
  const progress = new Progress(stopMode, returnFinal, diffs(x, gx));
  let best: Iterate = { u: x, prev: x };
  let bestFactors = cloneFactors(F);
  let tnstep = 0;
  let nstep = 0;
  let done = progress.current < eps && !returnFinal;
  const steps: number[] = [];

  while (nstep < maxDepth && !done) {
    const step = refArmijoLineSearch(g, x, gx, update, ls);
    steps.push(step.s);
    tnstep += step.extraEvals + 1;
    const dx = sub(step.x, x);
    const dg = sub(step.gx, gx);
    if (progress.record(diffs(step.x, step.gx))) {
      best = { u: step.x, prev: x };
      bestFactors = cloneFactors(F); // B as it was for this step, before its rank-one update
    }
    done = progress.current < eps && !returnFinal;

    // Rank-one update with the pre-update B (including the column about to be overwritten).
    const vT = bRmatvec(F, dx);
    const bdg = bMatvec(F, dg);
    let vTdg = 0;
    for (let i = 0; i < dim; i++) vTdg += vT[i] * dg[i];
    const denom = vTdg + 1e-9;
    const uCol = finiteOrZero(sub(dx, bdg).map((v) => v / denom));
    const vCol = finiteOrZero(vT);
    const col = nstep % L;
    for (let i = 0; i < dim; i++) {
      F.Us[i * L + col] = uCol[i];
      F.VTs[col * dim + i] = vCol[i];
    }
    F.validMask[col] = true;

    update = bMatvec(F, step.gx).map((v) => -v);
    x = step.x;
    gx = step.gx;
    nstep++;
  }

  const result = finish(progress, eps, best, tnstep, nstep);
  if (opts.returnB) result.B = bestFactors;
  result.steps = steps;
  return result;
}

/** Apply `B·y` for the given factors (exported for tests comparing factor actions). */
export function refBroydenMatvec(B: RefBroydenFactors, y: Float64Array): Float64Array {
  return bMatvec(B, y);
}
