/**
 * Solver options: the one shared set (as in the original, options that do not apply to a solver
 * are accepted and ignored), their defaults, and validation with errors that name the option.
 */
import { OptionError } from '../errors';
import { Tensor } from '../tensor';
import { readBoolean, readChoice, readInteger, readNumber, readOptions } from '../validate';

export type StopMode = 'abs' | 'rel';

/** Options of `picard`, `anderson` and `broyden` (all three accept all of them). */
export interface SolverOptions {
  /** Stop when the stop-mode residual falls below eps. eps ≤ 0 runs to maxDepth. Default 1e-3. */
  eps?: number;
  /** Iteration limit. Default 100 (picard, anderson), 50 (broyden). */
  maxDepth?: number;
  /** 'abs' = ‖f(u) − u‖, 'rel' = that divided by ‖f(u)‖ (see DESIGN). Default 'abs'. */
  stopMode?: StopMode;
  /** Return the last iterate instead of the best one. Default false. */
  returnFinal?: boolean;
  /** Broyden: also return the factors of the best iterate (`result.B`). Default false. */
  returnB?: boolean;
  /** Broyden: memory L (number of rank-one factors); null = maxDepth. Default 3. */
  lbfgsThres?: number | null;
  /** Broyden: Armijo line search. Default false. */
  ls?: boolean;
  /** Anderson: history window m. Default 2 (at most 32). */
  windowSize?: number;
  /** Anderson: Tikhonov regularisation of the Gram matrix. Default 1e-8. */
  reg?: number;
  /** Anderson: mixing β ∈ [0, 1]. Default 1. */
  mixingParam?: number;
  /** Anderson: clear the history when the window is full. Default false. */
  restarting?: boolean;
  /** Starting point, shape of Qd. Default zeros. */
  u0?: Tensor;
  /** Inference mode (stochastic layers turn their noise off). Default false. */
  inference?: boolean;
  /** Seed of the layer's randomness; each evaluation derives its own key from it. Default 0. */
  key?: number;
  /** Record the (abs, rel) residual of every iteration in `stats.trace`. Default false. */
  trace?: boolean;
  /** Iterations encoded between two looks at the GPU's convergence flag. Default 8. */
  checkEvery?: number;
  /**
   * Submit the next chunk of iterations before reading the convergence flag of the previous one,
   * hiding the readback latency (the chunk is skipped on the GPU if the solve has converged).
   * Default true.
   */
  overlap?: boolean;
  /**
   * Let the solver use a layer's fused whole-iteration kernel when the layer offers one (Picard
   * on a small tanh block: several iterations per dispatch in one workgroup). Default true.
   */
  fused?: boolean;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  eps: number;
  maxDepth: number;
  stopMode: StopMode;
  returnFinal: boolean;
  returnB: boolean;
  lbfgsThres: number;
  ls: boolean;
  windowSize: number;
  reg: number;
  mixingParam: number;
  restarting: boolean;
  u0?: Tensor;
  inference: boolean;
  key: number;
  trace: boolean;
  checkEvery: number;
  overlap: boolean;
  fused: boolean;
}

export type SolverName = 'picard' | 'anderson' | 'broyden';

export const MAX_WINDOW = 32;

const KNOWN = [
  'eps', 'maxDepth', 'stopMode', 'returnFinal', 'returnB', 'lbfgsThres', 'ls', 'windowSize', 'reg',
  'mixingParam', 'restarting', 'u0', 'inference', 'key', 'trace', 'checkEvery', 'overlap', 'fused',
] as const;

/** @internal The names of the solver options (wrappers that add their own check the union). */
export const SOLVER_OPTION_KEYS: readonly string[] = KNOWN;

/**
 * Fills in defaults for `solver` and validates every option.
 * @throws OptionError naming `options` or `options.<name>`.
 */
export function resolveOptions(solver: SolverName, options: SolverOptions | undefined): ResolvedOptions {
  const o = readOptions(options, 'options', KNOWN);
  const maxDepth = readInteger(o.maxDepth, 'options.maxDepth', solver === 'broyden' ? 50 : 100, 1);
  const stopMode = readChoice<StopMode>(o.stopMode, 'options.stopMode', 'abs', ['abs', 'rel']);
  const lbfgsThres = o.lbfgsThres === null ? maxDepth : readInteger(o.lbfgsThres, 'options.lbfgsThres', 3, 1);
  const u0 = o.u0;
  if (u0 !== undefined && !(u0 instanceof Tensor)) throw new OptionError('options.u0', 'must be a Tensor');
  return {
    eps: readNumber(o.eps, 'options.eps', 1e-3),
    maxDepth,
    stopMode,
    returnFinal: readBoolean(o.returnFinal, 'options.returnFinal', false),
    returnB: readBoolean(o.returnB, 'options.returnB', false),
    lbfgsThres,
    ls: readBoolean(o.ls, 'options.ls', false),
    windowSize: readInteger(o.windowSize, 'options.windowSize', 2, 1, MAX_WINDOW),
    reg: readNumber(o.reg, 'options.reg', 1e-8, { min: 0 }),
    mixingParam: readNumber(o.mixingParam, 'options.mixingParam', 1, { min: 0, max: 1 }),
    restarting: readBoolean(o.restarting, 'options.restarting', false),
    u0: u0 as Tensor | undefined,
    inference: readBoolean(o.inference, 'options.inference', false),
    key: readInteger(o.key, 'options.key', 0, 0, 0xffffffff),
    trace: readBoolean(o.trace, 'options.trace', false),
    checkEvery: readInteger(o.checkEvery, 'options.checkEvery', 8, 1),
    overlap: readBoolean(o.overlap, 'options.overlap', true),
    fused: readBoolean(o.fused, 'options.fused', true),
  };
}
