/**
 * The benchmark suite, independent of where it runs (Node/Dawn or a browser): solves a fixed
 * amount of work (eps = 0, fixed maxDepth) per solver and size with the engine as designed
 * (GPU-resident, convergence checked every 8 iterations, overlapped) and, side by side on the
 * same problem: the same engine reading the GPU state back after every iteration, and the
 * contenders given to it (TF.js WebGPU, a plain CPU loop) running the same iterations.
 */
import { Engine, Qd as injectedQd, add, anderson, broyden, implicitBlock, linear, picard, sequential, tanh, type ForwardKernelChoice, type ImplicitLayer, type SolverOptions, type SolveResult, type Tensor } from '../src';
import { medianTiming, type BenchSolver, type Contender, type ContenderCase } from './contenders/contender';
import { benchProblem, bytesPerEval, flopsPerEval, type BenchProblem } from './problem';
import { formatRow } from './table';
import { forwardKernelMicros } from './timestamps';

/**
 * How the benchmark's f is built: `block` is `implicitBlock` (the hand-made tanh block), `sequential`
 * the same function composed by the user, `sequential(linear(engine, { weight, bias }), add(Qd), tanh())`.
 */
export type BenchLayer = 'block' | 'sequential';

/** Every layer the suite can build, in the order its cases list them. */
export const BENCH_LAYERS: readonly BenchLayer[] = ['block', 'sequential'];

export interface BenchCase {
  solver: BenchSolver;
  /** Which construction of the same f this case times. */
  layer: BenchLayer;
  d: number;
  /** 0 = unbatched state [d]. */
  batch: number;
  maxDepth: number;
}

/** One contender's figures on a row. */
export interface ContenderFigures {
  /** µs per counted f-evaluation. */
  usPerEval: number;
  /** Counted evaluations of its timed solve (the CPU loop runs fewer on huge rows). */
  tnstep: number;
  /** Its µs/f-eval over the engine's: how many times faster the engine is. */
  ratio: number;
}

/** Forward-pass throughput: GEMV bandwidth at batch ≤ 1, matmul rate above. */
export interface Throughput {
  unit: 'GB/s' | 'GFLOP/s';
  /** From the end-to-end µs per f-evaluation (everything in the solve counted). */
  perEval: number;
  /** From the forward kernel's GPU time alone (timestamp queries), or null without them. */
  kernel: number | null;
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
  /** Peak bytes the engine's buffer pool held for this row (problem, solve buffers, staging). */
  peakBytes: number;
  /** GPU µs of one forward evaluation (timestamp queries), or null where the device has none. */
  forwardKernelUs: number | null;
  throughput: Throughput;
  /** Contenders by name; null where one does not run this solver or size. */
  contenders: Record<string, ContenderFigures | null>;
}

export interface SuiteOptions {
  repeats: number;
  log?: (line: string) => void;
  forwardKernel?: ForwardKernelChoice;
  fused?: boolean;
  /** Run beside the engine on every block row of a solver they support (TF.js, CPU). */
  contenders?: readonly Contender[];
}

const SOLVERS = { picard, anderson, broyden };

/** The engine's Anderson defaults, which the contenders copy. */
const ANDERSON_DEFAULTS = { windowSize: 2, reg: 1e-8, mixing: 1 };

/** A layer the suite times, and frees (with the parameters it uploaded) when the case is done. */
export type BenchF = ImplicitLayer & { dispose(): void };

/** The case's f (block or sequential, from the same arrays) and its Qd, uploaded to `engine`. */
export function uploadCase(engine: Engine, problem: BenchProblem, c: BenchCase, forwardKernel: ForwardKernelChoice): { f: BenchF; Qd: Tensor } {
  const params = { weight: problem.w, bias: problem.b };
  const f: BenchF =
    c.layer === 'block'
      ? implicitBlock(engine, { ...params, forwardKernel })
      : sequential(linear(engine, params), add(injectedQd), tanh());
  const shape = c.batch === 0 ? [problem.d] : [c.batch, problem.d];
  return { f, Qd: engine.tensor(problem.Qd, shape) };
}

async function timeSolves(run: () => Promise<SolveResult>, repeats: number): Promise<{ ms: number; tnstep: number }> {
  const { ms, tnstep } = await medianTiming(async () => {
    const result = await run();
    result.dispose();
    return result.tnstep;
  }, repeats);
  return { ms, tnstep };
}

function throughput(c: BenchCase, usPerEval: number, kernelUs: number | null): Throughput {
  const rows = Math.max(c.batch, 1);
  const gemv = rows === 1;
  const work = gemv ? bytesPerEval(c.d, rows) : flopsPerEval(c.d, rows);
  // bytes/µs = MB/s, flop/µs = MFLOP/s: / 1000 gives GB/s or GFLOP/s.
  const rate = (us: number) => work / us / 1000;
  return { unit: gemv ? 'GB/s' : 'GFLOP/s', perEval: rate(usPerEval), kernel: kernelUs === null ? null : rate(kernelUs) };
}

/**
 * Runs the cases and returns one row per case. Each case gets a fresh engine on `device`, so its
 * peak memory is its own.
 */
export async function runSuite(device: GPUDevice, cases: BenchCase[], options: SuiteOptions): Promise<BenchRow[]> {
  const { repeats, log = () => {}, forwardKernel = 'auto', fused = true, contenders = [] } = options;
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const problem = benchProblem(c.d, c.batch);
    const engine = Engine.fromDevice(device);
    const { f, Qd } = uploadCase(engine, problem, c, forwardKernel);
    const base: SolverOptions = { eps: 0, maxDepth: c.maxDepth, fused };
    const solve = SOLVERS[c.solver];
    const resident = await timeSolves(() => solve(f, Qd, base), repeats);
    const readbacks = engine.readbackCount / (repeats + 1);
    const peakBytes = engine.memory.peakBytes;
    const naive = await timeSolves(() => solve(f, Qd, { ...base, checkEvery: 1, overlap: false }), repeats);
    const forwardKernelUs = await forwardKernelMicros(engine, f, Qd);
    f.dispose();
    Qd.dispose();
    engine.destroy();

    const usPerEval = (resident.ms * 1000) / resident.tnstep;
    const usPerEvalReadbackEvery = (naive.ms * 1000) / naive.tnstep;
    const contenderCase: ContenderCase = { solver: c.solver, maxDepth: c.maxDepth, ...ANDERSON_DEFAULTS };
    const figures: Record<string, ContenderFigures | null> = {};
    for (const contender of contenders) {
      // The contenders solve the block's f; a sequential row is the same problem, so they run once per problem.
      const timing = c.layer === 'block' && contender.supports(c.solver) ? await contender.time(problem, contenderCase, repeats) : null;
      figures[contender.name] = timing && {
        usPerEval: (timing.ms * 1000) / timing.tnstep,
        tnstep: timing.tnstep,
        ratio: (timing.ms * 1000) / timing.tnstep / usPerEval,
      };
    }
    const row: BenchRow = {
      ...c,
      msPerSolve: resident.ms,
      usPerEval,
      usPerEvalReadbackEvery,
      speedup: usPerEvalReadbackEvery / usPerEval,
      tnstep: resident.tnstep,
      readbacks,
      peakBytes,
      forwardKernelUs,
      throughput: throughput(c, usPerEval, forwardKernelUs),
      contenders: figures,
    };
    rows.push(row);
    log(formatRow(row, contenders.map((k) => k.name)));
  }
  return rows;
}

/**
 * The standard cases: each solver at each size and batch, once per layer in `layers` (each
 * sequential case right after the block case of the same problem).
 */
export function standardCases(sizes: number[], batches: number[], depthScale = 1, layers: readonly BenchLayer[] = ['block']): BenchCase[] {
  const cases: BenchCase[] = [];
  const depth = (n: number) => Math.max(4, Math.round(n * depthScale));
  const solvers: [BenchSolver, number][] = [['picard', depth(64)], ['anderson', depth(64)], ['broyden', depth(32)]];
  for (const d of sizes) {
    for (const batch of batches) {
      for (const [solver, maxDepth] of solvers) {
        for (const layer of layers) cases.push({ solver, layer, d, batch, maxDepth });
      }
    }
  }
  return cases;
}
