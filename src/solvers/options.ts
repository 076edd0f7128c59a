/**
 * Solver options: the one shared set (as in the original, options that do not apply to a solver
 * are accepted and ignored), their defaults, and validation with errors that name the option.
 */
import { OptionError } from '../errors';
import { Tensor } from '../tensor';
import { F32_MAX, readBoolean, readChoice, readInteger, readNumber, readOptions } from '../validate';

export type StopMode = 'abs' | 'rel';

/** How a batched solve decides to stop: for the whole batch at once, or row by row (see {@link SolverOptions.convergence}). */
export type Convergence = 'batch' | 'per-sample';

/** Options of `picard`, `anderson` and `broyden` (all three accept all of them). */
export interface SolverOptions {
  /**
   * Stop when the stop-mode residual falls below eps. eps ≤ 0 runs to maxDepth. A finite
   * float32 (|eps| ≤ 3.4e38). Default 1e-3.
   */
  eps?: number;
  /** Iteration limit, an integer in [1, 2²⁰] (see MAX_DEPTH). Default 100 (picard, anderson), 50 (broyden). */
  maxDepth?: number;
  /** 'abs' = ‖f(u) − u‖, 'rel' = that divided by ‖f(u)‖ (see DESIGN). Default 'abs'. */
  stopMode?: StopMode;
  /** Return the last iterate instead of the best one. Default false. */
  returnFinal?: boolean;
  /** Broyden: also return the factors of the best iterate (`result.B`). Default false. */
  returnB?: boolean;
  /**
   * Broyden: memory L (number of rank-one factors), an integer in [1, 65 534]; null = maxDepth
   * (which must then be ≤ 65 534). Default 3.
   */
  lbfgsThres?: number | null;
  /** Broyden: Armijo line search. Default false. */
  ls?: boolean;
  /** Anderson: history window m. Default 2 (at most 32). */
  windowSize?: number;
  /** Anderson: Tikhonov regularisation of the Gram matrix, in [0, 3.4e38] (a finite float32). Default 1e-8. */
  reg?: number;
  /** Anderson: mixing β ∈ [0, 1]. Default 1. */
  mixingParam?: number;
  /** Anderson: clear the history when the window is full. Default false. */
  restarting?: boolean;
  /** Starting point, shape of Qd. Default zeros. */
  u0?: Tensor;
  /** Inference mode (stochastic layers turn their noise off). Default false. */
  inference?: boolean;
  /** Seed of the layer's randomness, a u32 (integer in [0, 2³² − 1]); each evaluation derives its own key from it. Default 0. */
  key?: number;
  /** Record the (abs, rel) residual of every iteration in `stats.trace`. Default false. */
  trace?: boolean;
  /**
   * Iterations encoded between two looks at the GPU's convergence flag, an integer in [1, 2²⁰], or
   * `'auto'` (the default): chunks of 8, then longer ones — doubling up to 256 while the residual
   * is far from eps, cut to the iterations its observed rate of decrease still needs — so a long
   * solve reads back a few times (4 for 100 iterations) and a short one wastes few iterations.
   * The GPU skips iterations encoded past convergence either way.
   */
  checkEvery?: number | 'auto';
  /**
   * The stall rule: stop once the best residual has not improved for this many iterations in a
   * row (`stats.status` is then `'stalled'`), as TorchDEQ's Broyden does after 30. An integer in
   * [0, 2²⁰]; 0 (the default) turns it off, the original's behaviour.
   */
  stallSteps?: number;
  /**
   * Submit the next chunk of iterations before reading the convergence flag of the previous one,
   * hiding the readback latency (the chunk is skipped on the GPU if the solve has converged).
   * Default true.
   */
  overlap?: boolean;
  /**
   * Let the solver fold each iteration's bookkeeping into the layer's dense product when the
   * layer offers one (a fused `linear → elementwise` group, such as the tanh block): Picard one
   * dispatch per iteration (on a small state, several iterations per dispatch in one workgroup),
   * Anderson and Broyden two (Broyden with `ls` nine); for a sequential of k groups ending in
   * one, Picard k, Anderson k + 1, Broyden k + 1 or k + 2 (by its first group); ending in a
   * `groupNorm`/`layerNorm` or `conv2d` group, Picard k, Anderson k + 1, Broyden k + 2 (or k + 1
   * by its first group). With `false`, the
   * layer's own kernels and the solver's. Default true.
   */
  fused?: boolean;
  /**
   * Longest time in milliseconds the solve's GPU work may take, from its first submit until its
   * result is read back (compiling and setup not counted). Past it the solve rejects with
   * TimeoutError and, since GPU work cannot be cancelled, the engine becomes unusable (create a
   * new one; in Node the process can then only end with `process.exit()`). A guard against
   * layers that never finish (an endless loop in `defineLayer` WGSL), which nothing else stops
   * on SwiftShader (a hardware GPU's watchdog may lose the device instead). In [1, 2³¹ − 1];
   * default: no limit.
   */
  timeoutMs?: number;
  /**
   * How a `[batch, d]` state stops. `'batch'` (the default, the original's rule): one residual
   * over all rows together, one stop test, one best-so-far, one step count.
   * `'per-sample'`: every row r runs the batch mode's rules on its own d values — its own
   * diffs(), eps/stopMode test, best-so-far, returnFinal, maxDepth and stall count, for anderson
   * its own history, Gram matrix, α and mix, for broyden its own factors U, Vᵀ (the dots over the
   * row) — so row r's uStar, uPrev and
   * step count are those of the same row solved alone (a `[1, d]` Qd) in per-sample mode, bit for
   * bit, whatever batch it sits in (for a layer that treats rows independently). A finished row is
   * frozen: the solver's kernels no longer run for it (they are dispatched over the rows still
   * going; its best iterate no longer changes); the layer still evaluates every row, since the
   * layer interface cannot skip rows. The solve ends
   * when every row has stopped. Then `stats.perSample` holds each row's nstep, residuals,
   * converged flag and status; `stats.nstep` and `tnstep` are the largest over the rows,
   * `stats.absResidual`/`relResidual` the largest best residual of a row, `stats.converged` is
   * true iff every row converged, and `stats.status` is `'converged'` iff every row converged,
   * else `'nonFinite'` if some row's residual became NaN/Infinity, else `'maxDepth'` if some row
   * reached maxDepth, else `'stalled'`. With `trace: true` the trace records, per iteration, the
   * largest (abs, rel) residual over the rows (a frozen row counts with its last measurement).
   * Stochastic layers: the evaluation index (the gate's eval_index) is per solve, shared by all
   * rows, and a row's noise depends on its position in the batch, so the batch-independence holds
   * for deterministic layers and in inference mode only. Costs per iteration: the layer's
   * kernels + 2 dispatches (picard, broyden), + 3 (anderson); no fused kernels in this mode.
   * broyden in this mode runs without line search and returns no factors: `ls: true` or
   * `returnB: true` (so gdeq with broyden) throw OptionError. At most the device's
   * maxComputeWorkgroupsPerDimension rows (65 535 by default; LimitError naming `'Qd'`).
   * Default `'batch'`.
   */
  convergence?: Convergence;
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
  /** The first chunk's iterations (and the fused Picard kernel's iterations per dispatch). */
  checkEvery: number;
  /** Whether chunks after the first adapt (checkEvery: 'auto'). */
  adaptiveChunks: boolean;
  stallSteps: number;
  overlap: boolean;
  fused: boolean;
  /** Infinity without a limit. */
  timeoutMs: number;
  convergence: Convergence;
}

export type SolverName = 'picard' | 'anderson' | 'broyden';

/** options.checkEvery: an iteration count, or 'auto' (the first chunk's length is then AUTO_FIRST_CHUNK). */
function readCheckEvery(value: unknown): number {
  if (value === 'auto') return AUTO_FIRST_CHUNK;
  if (typeof value === 'string') throw new OptionError('options.checkEvery', `must be an integer in [1, ${MAX_DEPTH}] or 'auto', got '${value}'`);
  return readInteger(value, 'options.checkEvery', AUTO_FIRST_CHUNK, 1, MAX_DEPTH);
}

/** The first chunk of an adaptive schedule (checkEvery: 'auto'). */
export const AUTO_FIRST_CHUNK = 8;
/** The longest chunk of an adaptive schedule. */
export const AUTO_LONGEST_CHUNK = 256;

export const MAX_WINDOW = 32;

/**
 * Largest `maxDepth` (and `checkEvery`): 2²⁰ iterations. Counts of iterations and evaluations
 * (up to 8 per iteration with the line search) live in u32 fields of the GPU's control block,
 * and `trace: true` keeps 8 bytes per iteration there; the bound keeps both far from their
 * limits and turns a mistaken huge value into an error up front instead of a wrapped count.
 */
export const MAX_DEPTH = 2 ** 20;

/**
 * Largest Broyden memory `lbfgsThres`: each iteration dispatches one workgroup row per stored
 * column (plus one), and WebGPU guarantees 65 535 workgroups per dimension.
 */
export const MAX_LBFGS_THRES = 65_534;

/** The option names every solver takes (the backprop wrappers accept them too). */
export const SOLVER_OPTION_KEYS: readonly string[] = [
  'eps', 'maxDepth', 'stopMode', 'returnFinal', 'returnB', 'lbfgsThres', 'ls', 'windowSize', 'reg',
  'mixingParam', 'restarting', 'u0', 'inference', 'key', 'trace', 'checkEvery', 'stallSteps', 'overlap', 'fused', 'timeoutMs',
  'convergence',
];

/**
 * Fills in defaults for `solver` and validates every option.
 * @throws OptionError naming `options` or `options.<name>`.
 */
export function resolveOptions(solver: SolverName, options: SolverOptions | undefined): ResolvedOptions {
  // A training loop passes the same options every call: the last ones' result, when the same.
  const last = lastResolved.get(solver);
  if (last && sameEntries(options, last.entries)) return last.resolved;
  const resolved = resolveAll(solver, options);
  const entries = entriesOf(options);
  if (entries) lastResolved.set(solver, { entries, resolved });
  return resolved;
}

/** Each solver's last options (their own entries, flattened) and what they resolved to (frozen). */
const lastResolved = new Map<SolverName, { entries: unknown[]; resolved: Readonly<ResolvedOptions> }>();

/**
 * The own entries of `options` as [key, value, key, value, …] (none for undefined), or null for
 * anything but undefined or a plain object (inherited options are resolved every call).
 */
function entriesOf(options: unknown): unknown[] | null {
  if (options === undefined) return [];
  if (typeof options !== 'object' || options === null || Object.getPrototypeOf(options) !== Object.prototype) return null;
  const entries: unknown[] = [];
  for (const [key, value] of Object.entries(options)) entries.push(key, value);
  return entries;
}

/** Whether `options` has exactly `entries` (from entriesOf), in order. */
function sameEntries(options: unknown, entries: unknown[]): boolean {
  if (options === undefined) return entries.length === 0;
  if (typeof options !== 'object' || options === null || Object.getPrototypeOf(options) !== Object.prototype) return false;
  const record = options as Record<string, unknown>;
  let i = 0;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) return false;
    if (entries[i] !== key || entries[i + 1] !== record[key]) return false;
    i += 2;
  }
  return i === entries.length;
}

/** {@link resolveOptions} without the memo. */
function resolveAll(solver: SolverName, options: SolverOptions | undefined): Readonly<ResolvedOptions> {
  const o = readOptions(options, 'options', SOLVER_OPTION_KEYS);
  const maxDepth = readInteger(o.maxDepth, 'options.maxDepth', solver === 'broyden' ? 50 : 100, 1, MAX_DEPTH);
  const stopMode = readChoice<StopMode>(o.stopMode, 'options.stopMode', 'abs', ['abs', 'rel']);
  if (o.lbfgsThres === null && solver === 'broyden' && maxDepth > MAX_LBFGS_THRES) {
    throw new OptionError('options.lbfgsThres', `null means maxDepth (${maxDepth}) factors, more than the ${MAX_LBFGS_THRES} allowed; give a number`);
  }
  // Picard and Anderson ignore it (but it reaches the shared finish kernel, so it stays bounded).
  const lbfgsThres = o.lbfgsThres === null ? Math.min(maxDepth, MAX_LBFGS_THRES) : readInteger(o.lbfgsThres, 'options.lbfgsThres', 3, 1, MAX_LBFGS_THRES);
  const convergence = readChoice<Convergence>(o.convergence, 'options.convergence', 'batch', ['batch', 'per-sample']);
  if (convergence === 'per-sample' && solver === 'broyden' && (o.ls === true || o.returnB === true)) {
    throw new OptionError(
      'options.convergence',
      `per-sample broyden runs without the line search and returns no factors (returnB, which gdeq asks for): ${o.ls === true ? 'ls' : 'returnB'}: true needs convergence: 'batch'`,
    );
  }
  const u0 = o.u0;
  if (u0 !== undefined && !(u0 instanceof Tensor)) throw new OptionError('options.u0', 'must be a Tensor');
  return Object.freeze({
    eps: readNumber(o.eps, 'options.eps', 1e-3, { min: -F32_MAX, max: F32_MAX }),
    maxDepth,
    stopMode,
    returnFinal: readBoolean(o.returnFinal, 'options.returnFinal', false),
    returnB: readBoolean(o.returnB, 'options.returnB', false),
    lbfgsThres,
    ls: readBoolean(o.ls, 'options.ls', false),
    windowSize: readInteger(o.windowSize, 'options.windowSize', 2, 1, MAX_WINDOW),
    reg: readNumber(o.reg, 'options.reg', 1e-8, { min: 0, max: F32_MAX }),
    mixingParam: readNumber(o.mixingParam, 'options.mixingParam', 1, { min: 0, max: 1 }),
    restarting: readBoolean(o.restarting, 'options.restarting', false),
    u0: u0 as Tensor | undefined,
    inference: readBoolean(o.inference, 'options.inference', false),
    key: readInteger(o.key, 'options.key', 0, 0, 0xffffffff),
    trace: readBoolean(o.trace, 'options.trace', false),
    checkEvery: readCheckEvery(o.checkEvery),
    adaptiveChunks: o.checkEvery === undefined || o.checkEvery === 'auto',
    stallSteps: readInteger(o.stallSteps, 'options.stallSteps', 0, 0, MAX_DEPTH),
    overlap: readBoolean(o.overlap, 'options.overlap', true),
    fused: readBoolean(o.fused, 'options.fused', true),
    // Up to setTimeout's longest delay (about 24.8 days); a longer one would fire at once.
    timeoutMs: readNumber(o.timeoutMs, 'options.timeoutMs', Infinity, { min: 1, max: 2 ** 31 - 1 }),
    convergence,
  });
}
