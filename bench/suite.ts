/**
 * The benchmark suite, independent of where it runs (Node/Dawn or a browser): solves a fixed
 * amount of work (eps = 0, fixed maxDepth) per solver and size, with the engine as designed
 * (GPU-resident, convergence checked every 8 iterations, overlapped) and, beside it, the same
 * loop reading the GPU state back after every iteration — the ratio is what residency buys.
 */
import { anderson, broyden, picard, type Engine, type ForwardKernelChoice, type SolverOptions, type SolveResult, type TanhBlock, type Tensor } from '../src';

export interface BenchCase {
  solver: 'picard' | 'anderson' | 'broyden';
  d: number;
  /** 0 = unbatched state [d]. */
  batch: number;
  maxDepth: number;
}

export interface BenchRow extends BenchCase {
  /** Median ms per solve, resident engine. */
  msPerSolve: number;
  /** µs per evaluation of f, resident engine. */
  usPerEval: number;
  /** µs per evaluation of f with a readback after every iteration. */
  usPerEvalReadbackEvery: number;
  /** usPerEvalReadbackEvery / usPerEval. */
  speedup: number;
  tnstep: number;
  /** Readbacks (mapAsync) per solve, resident engine. */
  readbacks: number;
}

export interface SuiteOptions {
  sizes: number[];
  batches: number[];
  repeats: number;
  log?: (line: string) => void;
}

const SOLVERS = { picard, anderson, broyden };

function seededValues(count: number, scale: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = ((state / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** A contractive block of width d (entries ±0.9/√d keep the spectral radius below 1). */
function problem(engine: Engine, d: number, batch: number, forwardKernel: ForwardKernelChoice): { f: TanhBlock; Qd: Tensor } {
  const f = engine.implicitBlock({ w: seededValues(d * d, 0.9 / Math.sqrt(d), 1), b: seededValues(d, 0.1, 2), forwardKernel });
  const shape = batch === 0 ? [d] : [batch, d];
  return { f, Qd: engine.tensor(seededValues(Math.max(batch, 1) * d, 1, 3), shape) };
}

async function timeSolves(
  run: () => Promise<SolveResult>,
  repeats: number,
): Promise<{ ms: number; result: SolveResult }> {
  (await run()).dispose(); // warm-up: compiles pipelines, fills the pool and bind-group caches
  const times: number[] = [];
  let last: SolveResult | undefined;
  for (let k = 0; k < repeats; k++) {
    last?.dispose();
    const start = performance.now();
    last = await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], result: last as SolveResult };
}

/** Runs the cases and returns one row per case. */
export async function runSuite(
  engine: Engine,
  cases: BenchCase[],
  repeats: number,
  log = (_: string) => {},
  forwardKernel: ForwardKernelChoice = 'auto',
  fused = true,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const { f, Qd } = problem(engine, c.d, c.batch, forwardKernel);
    const base: SolverOptions = { eps: 0, maxDepth: c.maxDepth, fused };
    const solve = SOLVERS[c.solver];
    const before = engine.readbackCount;
    const resident = await timeSolves(() => solve(f, Qd, base), repeats);
    const readbacks = (engine.readbackCount - before) / (repeats + 1);
    const naive = await timeSolves(() => solve(f, Qd, { ...base, checkEvery: 1, overlap: false }), repeats);
    const tnstep = resident.result.tnstep;
    const row: BenchRow = {
      ...c,
      msPerSolve: resident.ms,
      usPerEval: (resident.ms * 1000) / tnstep,
      usPerEvalReadbackEvery: (naive.ms * 1000) / naive.result.tnstep,
      speedup: naive.ms / naive.result.tnstep / (resident.ms / tnstep),
      tnstep,
      readbacks,
    };
    resident.result.dispose();
    naive.result.dispose();
    f.params.w.dispose();
    f.params.b.dispose();
    Qd.dispose();
    rows.push(row);
    log(formatRow(row));
  }
  return rows;
}

/** The standard cases: each solver at each size and batch. */
export function standardCases(sizes: number[], batches: number[], depthScale = 1): BenchCase[] {
  const cases: BenchCase[] = [];
  const depth = (n: number) => Math.max(4, Math.round(n * depthScale));
  for (const d of sizes) {
    for (const batch of batches) {
      cases.push({ solver: 'picard', d, batch, maxDepth: depth(64) });
      cases.push({ solver: 'anderson', d, batch, maxDepth: depth(64) });
      cases.push({ solver: 'broyden', d, batch, maxDepth: depth(32) });
    }
  }
  return cases;
}

export const TABLE_HEADER =
  '| solver | d | batch | f-evals | ms/solve | µs/f-eval | µs/f-eval, readback every iter | ratio | readbacks/solve |\n' +
  '|---|---|---|---|---|---|---|---|---|';

export function formatRow(r: BenchRow): string {
  return `| ${r.solver} | ${r.d} | ${r.batch} | ${r.tnstep} | ${r.msPerSolve.toFixed(2)} | ${r.usPerEval.toFixed(1)} | ${r.usPerEvalReadbackEvery.toFixed(1)} | ${r.speedup.toFixed(2)}× | ${r.readbacks.toFixed(0)} |`;
}
