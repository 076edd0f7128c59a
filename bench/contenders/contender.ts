/**
 * What the suite asks of a contender beside the engine: the same fixed-work solve (eps = 0,
 * maxDepth iterations, the final state read back once), timed the same way.
 */
import type { BenchProblem } from '../problem';

export type BenchSolver = 'picard' | 'anderson' | 'broyden';

/** The solve each contender runs for one row. */
export interface ContenderCase {
  solver: BenchSolver;
  maxDepth: number;
  /** Anderson: history window m (the engine's default, 2). */
  windowSize: number;
  /** Anderson: Tikhonov term of the Gram matrix (default 1e-8). */
  reg: number;
  /** Anderson: mixing β (default 1). */
  mixing: number;
}

/** A timed solve: the median wall time and the evaluations of f, counted as the engine counts them. */
export interface ContenderTiming {
  ms: number;
  tnstep: number;
}

/** A contender: something that runs Picard and Anderson iterations of the benchmark block. */
export interface Contender {
  /** Short name, used as the key of its column and chart line. */
  readonly name: string;
  /** What it is, for the results' header (library and version, settings). */
  readonly description: string;
  /** Whether it runs this solver (the table shows "—" otherwise). */
  supports(solver: BenchSolver): boolean;
  /** Median ms of `repeats` solves after the warm-up (medianTiming), or null when it declines this size. */
  time(problem: BenchProblem, solve: ContenderCase, repeats: number): Promise<ContenderTiming | null>;
  /** Frees what it holds (GPU memory, backends). */
  dispose(): void;
}

/**
 * The median of `repeats` timed calls after two untimed warm-up calls; `run` returns the counted
 * evaluations of f. Two, because the engine keeps a configuration's solve program from its
 * second solve on (docs/architecture.md, "Decisions"): with one warm-up the first timed call still
 * builds it, and at 2 repeats the median (the larger of two) was that build.
 */
export async function medianTiming(run: () => Promise<number>, repeats: number): Promise<ContenderTiming> {
  await run();
  await run();
  const times: number[] = [];
  let tnstep = 0;
  for (let k = 0; k < repeats; k++) {
    const start = performance.now();
    tnstep = await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], tnstep };
}

/**
 * Evaluations of f counted as the engine (and the original) count them for a fixed-work solve:
 * Picard counts maxDepth + 1, Anderson 2 per iteration after the first (it evaluates once and
 * reuses the value, as the engine does).
 */
export function countedEvaluations(solver: BenchSolver, maxDepth: number): number {
  return solver === 'anderson' ? 2 * maxDepth - 1 : maxDepth + 1;
}
