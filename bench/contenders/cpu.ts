/**
 * The plain-TypeScript contender: the same Picard and Anderson iterations as the engine, on the
 * CPU in Float32Arrays (one thread). Each iteration measures ‖f(u) − u‖ and keeps the best
 * iterate, as the engine does with eps = 0 and stopMode 'abs'; Anderson evaluates f once per
 * iteration and reuses the value as the next history entry, as the engine does.
 */
import type { BenchProblem } from '../problem';
import { countedEvaluations, medianTiming, type Contender, type ContenderCase, type ContenderTiming } from './contender';

/** What a CPU solve returns. */
export interface CpuSolveResult {
  /** The best iterate (lowest ‖f(u) − u‖ seen). */
  uStar: Float32Array;
  /** ‖f(u*) − u*‖ as measured when u* was chosen. */
  absResidual: number;
  /** Evaluations of f, counted as the engine counts them. */
  tnstep: number;
}

/** Evaluates f(u) = tanh(u @ w + Qd + b) row by row into `out` (`qdb` = Qd + b, precomputed). */
function evaluate(problem: BenchProblem, qdb: Float32Array, u: Float32Array, out: Float32Array): void {
  const { d, rows, w } = problem;
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    out.set(qdb.subarray(base, base + d), base);
    for (let k = 0; k < d; k++) {
      const uk = u[base + k];
      const wRow = k * d;
      for (let j = 0; j < d; j++) out[base + j] += uk * w[wRow + j];
    }
    for (let j = base; j < base + d; j++) out[j] = Math.tanh(out[j]);
  }
}

function injection(problem: BenchProblem): Float32Array {
  const { d, rows, b, Qd } = problem;
  const qdb = new Float32Array(rows * d);
  for (let i = 0; i < qdb.length; i++) qdb[i] = Qd[i] + b[i % d];
  return qdb;
}

function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const r = a[i] - b[i];
    s += r * r;
  }
  return s;
}

/**
 * Picard u ← f(u) from u0 = 0 for `maxDepth` evaluations of f. The starting point's residual is
 * measured from the first evaluation (which is also the first step), as the engine does.
 */
export function cpuPicard(problem: BenchProblem, maxDepth: number): CpuSolveResult {
  const qdb = injection(problem);
  const n = problem.rows * problem.d;
  let u = new Float32Array(n);
  let next = new Float32Array(n);
  const best = new Float32Array(n);
  evaluate(problem, qdb, u, next);
  let bestSquared = squaredDistance(next, u); // the starting point is the first best
  for (let t = 0; t < maxDepth; t++) {
    if (t > 0) evaluate(problem, qdb, u, next);
    const squared = squaredDistance(next, u);
    if (squared < bestSquared) {
      bestSquared = squared;
      best.set(next);
    }
    [u, next] = [next, u];
  }
  return { uStar: best, absResidual: Math.sqrt(bestSquared), tnstep: countedEvaluations('picard', maxDepth) };
}

/**
 * Solves (G + reg·I) α = 1 over the first `len` slots by Gaussian elimination with partial
 * pivoting (in float64), then normalises α /= Σα + 1e-12. Slots past `len` get α = 0.
 */
export function andersonWeights(gram: Float64Array, slots: number, len: number, reg: number): Float64Array {
  const a = new Float64Array(len * len);
  const x = new Float64Array(len).fill(1);
  for (let r = 0; r < len; r++) for (let c = 0; c < len; c++) a[r * len + c] = gram[r * slots + c] + (r === c ? reg : 0);
  for (let k = 0; k < len; k++) {
    let pivot = k;
    for (let r = k + 1; r < len; r++) if (Math.abs(a[r * len + k]) > Math.abs(a[pivot * len + k])) pivot = r;
    if (pivot !== k) {
      for (let c = 0; c < len; c++) [a[k * len + c], a[pivot * len + c]] = [a[pivot * len + c], a[k * len + c]];
      [x[k], x[pivot]] = [x[pivot], x[k]];
    }
    for (let r = k + 1; r < len; r++) {
      const factor = a[r * len + k] / a[k * len + k];
      for (let c = k; c < len; c++) a[r * len + c] -= factor * a[k * len + c];
      x[r] -= factor * x[k];
    }
  }
  const alpha = new Float64Array(slots);
  let total = 0;
  for (let k = len - 1; k >= 0; k--) {
    let value = x[k];
    for (let c = k + 1; c < len; c++) value -= a[k * len + c] * alpha[c];
    alpha[k] = value / a[k * len + k];
    total += alpha[k];
  }
  for (let k = 0; k < len; k++) alpha[k] /= total + 1e-12;
  return alpha;
}

/**
 * Anderson acceleration from u0 = 0 with a ring of m + 1 history slots (no restarts), the
 * engine's default rules: u1 = f(u0) is the first best; each iteration mixes
 * u' = (1 − β)Σα x + βΣα f(x), evaluates f(u') once, and keeps u' if ‖f(u') − u'‖ improved.
 * Only the newest row of the Gram matrix is computed per iteration.
 */
export function cpuAnderson(problem: BenchProblem, solve: Pick<ContenderCase, 'maxDepth' | 'windowSize' | 'reg' | 'mixing'>): CpuSolveResult {
  const { maxDepth, reg, mixing: beta } = solve;
  const qdb = injection(problem);
  const n = problem.rows * problem.d;
  const slots = solve.windowSize + 1;
  const xs = Array.from({ length: slots }, () => new Float32Array(n));
  const fxs = Array.from({ length: slots }, () => new Float32Array(n));
  const res = Array.from({ length: slots }, () => new Float32Array(n));
  const gram = new Float64Array(slots * slots);
  const write = (slot: number, x: Float32Array, fx: Float32Array): void => {
    xs[slot].set(x);
    fxs[slot].set(fx);
    for (let i = 0; i < n; i++) res[slot][i] = fx[i] - x[i];
    for (let j = 0; j < slots; j++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += res[slot][i] * res[j][i];
      gram[slot * slots + j] = dot;
      gram[j * slots + slot] = dot;
    }
  };

  let u = new Float32Array(n); // x0 = 0
  let fu = new Float32Array(n);
  evaluate(problem, qdb, u, fu); // u1 = f(x0)
  write(0, u, fu);
  let bestSquared = squaredDistance(fu, u);
  const best = Float32Array.from(fu);
  u = Float32Array.from(fu);
  evaluate(problem, qdb, u, fu); // f(u1)
  let next = new Float32Array(n);
  let fNext = new Float32Array(n);
  let ptr = 1;
  let len = 1;
  for (let step = 1; step < maxDepth; step++) {
    write(ptr, u, fu);
    ptr = (ptr + 1) % slots;
    len = Math.min(len + 1, slots);
    const alpha = andersonWeights(gram, slots, len, reg);
    next.fill(0);
    for (let j = 0; j < len; j++) {
      const ax = (1 - beta) * alpha[j];
      const af = beta * alpha[j];
      const x = xs[j];
      const fx = fxs[j];
      for (let i = 0; i < n; i++) next[i] += ax * x[i] + af * fx[i];
    }
    evaluate(problem, qdb, next, fNext);
    const squared = squaredDistance(fNext, next);
    if (squared < bestSquared) {
      bestSquared = squared;
      best.set(next);
    }
    [u, next] = [next, u];
    [fu, fNext] = [fNext, fu];
  }
  return { uStar: best, absResidual: Math.sqrt(bestSquared), tnstep: countedEvaluations('anderson', maxDepth) };
}

/**
 * The CPU contender. Solves over `flopBudget` run fewer iterations (at least 2; its µs per
 * f-evaluation is per iteration anyway), and rows where one evaluation alone exceeds half the
 * budget are declined ("—"): a d = 4096 × 1024 row would take minutes per solve in one thread.
 */
export function cpuContender(flopBudget = 4e9): Contender {
  return {
    name: 'cpu',
    description: `plain TypeScript Float32Array loop, one CPU thread (solves over ${flopBudget.toExponential(0)} flop run fewer iterations; rows over ${(flopBudget / 2).toExponential(0)} flop per evaluation are skipped)`,
    supports: (solver) => solver === 'picard' || solver === 'anderson',
    async time(problem: BenchProblem, solve: ContenderCase, repeats: number): Promise<ContenderTiming | null> {
      const perEval = 2 * problem.rows * problem.d * problem.d;
      if (perEval > flopBudget / 2) return null;
      const maxDepth = Math.max(2, Math.min(solve.maxDepth, Math.floor(flopBudget / perEval)));
      const run = async (): Promise<number> =>
        solve.solver === 'anderson' ? cpuAnderson(problem, { ...solve, maxDepth }).tnstep : cpuPicard(problem, maxDepth).tnstep;
      return medianTiming(run, maxDepth < solve.maxDepth ? 1 : repeats);
    },
    dispose() {},
  };
}
