/**
 * Solver options: the one shared set (as in the original, options that do not apply to a solver
 * are accepted and ignored), their defaults, and validation with errors that name the option.
 */
import { OptionError } from '../errors';
import { Tensor } from '../tensor';

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

const KNOWN = new Set<string>([
  'eps', 'maxDepth', 'stopMode', 'returnFinal', 'returnB', 'lbfgsThres', 'ls', 'windowSize', 'reg',
  'mixingParam', 'restarting', 'u0', 'inference', 'key', 'trace', 'checkEvery', 'overlap', 'fused',
]);

function fail(name: string, message: string): never {
  throw new OptionError(`options.${name}`, message);
}

function number(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(name, `must be a finite number, got ${String(value)}`);
  return value;
}

function integer(value: unknown, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = number(value, name, fallback);
  if (!Number.isInteger(v) || v < min || v > max) fail(name, `must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(name, `must be true or false, got ${String(value)}`);
  return value;
}

/**
 * Fills in defaults for `solver` and validates every option.
 * @throws OptionError naming `options` or `options.<name>`.
 */
export function resolveOptions(solver: SolverName, options: SolverOptions | undefined): ResolvedOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new OptionError('options', `must be an object, got ${Array.isArray(options) ? 'an array' : String(options)}`);
  }
  const o = (options ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) fail(key, `unknown option (known: ${[...KNOWN].join(', ')})`);
  }
  const maxDepth = integer(o.maxDepth, 'maxDepth', solver === 'broyden' ? 50 : 100, 1);
  const stopMode = o.stopMode ?? 'abs';
  if (stopMode !== 'abs' && stopMode !== 'rel') fail('stopMode', `must be 'abs' or 'rel', got ${String(stopMode)}`);
  let lbfgsThres = maxDepth;
  if (o.lbfgsThres !== null) lbfgsThres = integer(o.lbfgsThres, 'lbfgsThres', 3, 1);
  const reg = number(o.reg, 'reg', 1e-8);
  if (reg < 0) fail('reg', `must be ≥ 0, got ${reg}`);
  const mixingParam = number(o.mixingParam, 'mixingParam', 1);
  if (mixingParam < 0 || mixingParam > 1) fail('mixingParam', `must lie in [0, 1], got ${mixingParam}`);
  const u0 = o.u0;
  if (u0 !== undefined && !(u0 instanceof Tensor)) fail('u0', 'must be a Tensor');
  return {
    eps: number(o.eps, 'eps', 1e-3),
    maxDepth,
    stopMode,
    returnFinal: boolean(o.returnFinal, 'returnFinal', false),
    returnB: boolean(o.returnB, 'returnB', false),
    lbfgsThres,
    ls: boolean(o.ls, 'ls', false),
    windowSize: integer(o.windowSize, 'windowSize', 2, 1, MAX_WINDOW),
    reg,
    mixingParam,
    restarting: boolean(o.restarting, 'restarting', false),
    u0: u0 as Tensor | undefined,
    inference: boolean(o.inference, 'inference', false),
    key: integer(o.key, 'key', 0, 0, 0xffffffff),
    trace: boolean(o.trace, 'trace', false),
    checkEvery: integer(o.checkEvery, 'checkEvery', 8, 1),
    overlap: boolean(o.overlap, 'overlap', true),
    fused: boolean(o.fused, 'fused', true),
  };
}
