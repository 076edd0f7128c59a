/**
 * The public types of what the solvers return (`SolveResult`, `SolveStats`, `BroydenFactors`)
 * and of a solver function (`Solver`), in one place: the scheduler (solvers/run.ts) and the
 * backprop wrappers use them, and so do users wrapping or replacing a solver.
 */
import type { ImplicitLayer } from './layers/layer';
import type { SolverOptions } from './solvers/options';
import type { Tensor } from './tensor';

/**
 * Why a solve stopped: `'converged'` (the stop-mode residual fell below eps), `'maxDepth'` (the
 * iteration limit), `'stalled'` (the best residual did not improve for `stallSteps` iterations),
 * `'nonFinite'` (a residual became NaN or infinite).
 */
export type SolveStatus = 'converged' | 'maxDepth' | 'stalled' | 'nonFinite';

/** Convergence statistics of a solve. */
export interface SolveStats {
  /** Why the solve stopped (see {@link SolveStatus}). */
  status: SolveStatus;
  /** Iterations performed (with `convergence: 'per-sample'`: the most any row performed). */
  nstep: number;
  /**
   * Lowest absolute residual ‖f(u) − u‖ seen (the last one with returnFinal); with
   * `convergence: 'per-sample'` the largest of the rows' own (see {@link perSample}).
   */
  absResidual: number;
  /** Lowest relative residual seen (the last one with returnFinal); per-sample: the largest of the rows'. */
  relResidual: number;
  /** Whether the last stop-mode residual fell below eps (per-sample: every row's). */
  converged: boolean;
  /** Whether a residual became NaN/Infinite (the solve then stopped with the best finite iterate). */
  nonFinite: boolean;
  /**
   * Every measured (abs, rel) residual in order, the initial one first (with `trace: true`; with
   * `convergence: 'per-sample'`, per iteration the largest over the rows).
   */
  trace?: { abs: number[]; rel: number[] };
  /** With `convergence: 'per-sample'`: each row's own statistics, row r at index r. */
  perSample?: PerSampleStats;
}

/**
 * Each row's statistics of a `convergence: 'per-sample'` solve, one entry per row of the
 * `[batch, d]` state (a `[d]` state is one row): its iterations, its best residuals (its last
 * ones with returnFinal), whether its last stop-mode residual fell below eps, and why it stopped.
 */
export interface PerSampleStats {
  nstep: number[];
  absResidual: number[];
  relResidual: number[];
  converged: boolean[];
  status: SolveStatus[];
}

/** Broyden factors of the best iterate: B = −I + U Vᵀ over the valid columns. */
export interface BroydenFactors {
  /** U, shape [dim, L] (dim = all batch rows flattened). */
  Us: Tensor;
  /** Vᵀ, shape [L, dim]. */
  VTs: Tensor;
  /** Which of the L columns hold a factor. */
  validMask: boolean[];
}

/** What a solver returns. */
export interface SolveResult {
  /** The fixed point (best iterate), shape of Qd. */
  uStar: Tensor;
  /** The iterate before uStar. */
  uPrev: Tensor;
  /** Number of evaluations of f, counted as the original counts them. */
  tnstep: number;
  stats: SolveStats;
  /** With `returnB` (Broyden): the factors of the best iterate. */
  B?: BroydenFactors;
  /** Frees uStar, uPrev and B. */
  dispose(): void;
}

/**
 * A solver function: `picard`, `anderson` or `broyden`, or a function of the same signature (a
 * wrapper around one, say). What it returns must be a SolveResult with tensors of Qd's shape on
 * f's engine; otherwise jfb/gdeq/ift reject with OptionError naming the option.
 */
export type Solver = (f: ImplicitLayer, Qd: Tensor, options?: SolverOptions) => Promise<SolveResult>;
