/**
 * What JFB, GDEQ and IFT share: run the solver, recompute the last step uStar = f(uPrev) in
 * inference mode (the value the wrappers return), and encode a layer's VJP into gradient tensors.
 */
import type { Engine } from '../engine';
import { DisposedError, NonFiniteError, OptionError, ShapeError } from '../errors';
import type { BufferRegion } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import { broyden } from '../solvers/broyden';
import { SOLVER_OPTION_KEYS, type SolverOptions } from '../solvers/options';
import type { BroydenFactors, SolveResult, SolveStats, Solver } from '../results';
import { holdValues } from '../scope';
import { Tensor } from '../tensor';
import { readBoolean, readChoice, readLayer, readOptions, readSolveResult, readSolver, readTensor } from '../validate';


/**
 * Options of `jfb`, `gdeq` and `ift`: the solver and its options (unknown names are refused with
 * OptionError, as by the solvers).
 */
export interface ImplicitOptions extends SolverOptions {
  /** The forward solver. Default `broyden`. */
  solver?: Solver;
}

/**
 * What IFT's `backward` does when its adjoint solve λ = J_fᵀλ + gradUStar stops without reaching
 * `backwardEps` (see {@link BackwardOptions.onUnconverged}).
 */
export type OnUnconverged = 'throw' | 'jfb' | 'accept';

/** Options of `backward`, validated before anything is computed (a rejected call can be made again). */
export interface BackwardOptions {
  /**
   * Check gradUStar for NaN/±Infinity first (one GPU pass and a 4-byte readback) and reject with
   * NonFiniteError (`'gradUStar'`) before computing anything; the result stays usable. Default
   * false: no readback, and a non-finite gradUStar gives NaN gradients (JFB, GDEQ) or, for IFT,
   * an adjoint solve that stops with `backwardStats.nonFinite` and a NonFiniteError.
   */
  checkFinite?: boolean;
  /**
   * IFT only (JFB and GDEQ solve no adjoint equation and ignore it): what to do when the adjoint
   * solve ends unconverged (relative residual above `backwardEps` after `backwardMaxDepth`
   * iterations, or diverged to NaN/Infinity from a finite gradUStar).
   * - `'jfb'` (default): return the JFB gradient instead (the VJP of the last step with the
   *   incoming gradient, as `jfb` computes it), and say so in `result.backwardInfo`
   *   (`method: 'jfb'`, `fellBack: true`). The default because an adjoint that stops short gives
   *   gradients that may point anywhere (training then wanders, and later overflows), while JFB
   *   is a descent direction when f is contractive enough (Fung et al., "JFB: Jacobian-free
   *   backpropagation for implicit networks", 2022): a training loop keeps making progress, and
   *   nothing unconverged is returned unmarked.
   * - `'throw'`: reject with ConvergenceError (`'backward'`); the result's `backward` stays
   *   callable (e.g. again with `'jfb'`), and `backwardStats` holds the adjoint solve's statistics.
   * - `'accept'`: return the gradients of the adjoint's best iterate whatever its residual
   *   (`backwardInfo.converged` false). A diverged adjoint solve still rejects (ConvergenceError):
   *   its best finite iterate is no gradient.
   *
   * A non-finite gradUStar always rejects with NonFiniteError (`'gradUStar'`).
   */
  onUnconverged?: OnUnconverged;
}

/** What the `backward` call of a result computed (`result.backwardInfo`, set once it resolved). */
export interface BackwardInfo {
  /** The gradient returned: the wrapper's own (`'jfb'`, `'gdeq'`, `'ift'`, `'phantom'`), or `'jfb'` when IFT fell back. */
  method: 'jfb' | 'gdeq' | 'ift' | 'phantom';
  /**
   * Whether the adjoint solve converged to `backwardEps`. Always true for JFB, GDEQ and phantom,
   * which solve none; for IFT the same as `backwardStats.converged`.
   */
  converged: boolean;
  /** Whether IFT's adjoint solve did not converge and JFB gradients were returned instead. */
  fellBack: boolean;
}

/** @internal Backward options with their defaults. */
export interface ResolvedBackwardOptions {
  checkFinite: boolean;
  onUnconverged: OnUnconverged;
}

/** Gradients by parameter name (for the tanh block `w` and `b`), plus `Qd`. */
export type Gradients = { readonly Qd: Tensor } & Readonly<Record<string, Tensor>>;

/** What `jfb`, `gdeq`, `ift` and `phantom` return. */
export interface ImplicitResult {
  /**
   * f(uPrev), recomputed after the solve (this is the value gradients flow through); for
   * `phantom`'s unrolled form the last of its k damped steps from uPrev.
   */
  uStar: Tensor;
  uPrev: Tensor;
  tnstep: number;
  stats: SolveStats;
  /**
   * Gradients of a loss with ∂loss/∂uStar = gradUStar. Call once: a call that succeeded uses
   * the result up, a call that rejected (bad argument or option, non-finite gradUStar,
   * ConvergenceError…) does not.
   * @throws ShapeError / DisposedError / EngineMismatchError (`'gradUStar'`), NonFiniteError
   * (`'gradUStar'`, see {@link BackwardOptions.checkFinite}), OptionError (`'backward'`: called
   * again; `'options'`, `'options.<name>'`), DisposedError (`'backward'`: after dispose()),
   * ConvergenceError (`'backward'`: IFT's adjoint solve did not converge, see
   * {@link BackwardOptions.onUnconverged}).
   */
  backward(gradUStar: Tensor, options?: BackwardOptions): Promise<Gradients>;
  /** What `backward` computed; undefined until a `backward` call resolved. */
  backwardInfo?: BackwardInfo;
  /** Frees uStar, uPrev and the solver's factors. */
  dispose(): void;
}

/** @internal A solve whose uStar has been recomputed as f(uPrev). */
export interface Solved {
  layer: ImplicitLayer;
  Qd: Tensor;
  batch: number;
  result: SolveResult;
  uStar: Tensor;
}

/** @internal The option names of `jfb` and `gdeq`: the solver options and `solver`. */
export const IMPLICIT_OPTION_KEYS: readonly string[] = [...SOLVER_OPTION_KEYS, 'solver'];

/**
 * @internal
 * Runs `solver` (given as `argument`) and checks what it returns. A TypeError it throws (a
 * function that is not a solver, called with a layer) becomes an OptionError naming `argument`.
 * @throws OptionError (`argument`), or what the solver throws.
 */
export async function callSolver(solver: Solver, argument: string, f: ImplicitLayer, Qd: Tensor, options: SolverOptions): Promise<SolveResult> {
  let result: unknown;
  try {
    result = await solver(f, Qd, options);
  } catch (err) {
    if (err instanceof TypeError) throw new OptionError(argument, `is not a solver: calling it threw ${err.name}: ${err.message}`);
    throw err;
  }
  return readSolveResult(result, argument, f.engine, Qd.shape);
}

/**
 * @internal
 * Checks the arguments shared by jfb, gdeq and ift (the layer, Qd, the option names in `known`
 * and `options.solver`), before anything runs.
 * @throws OptionError (`'f'`, `'options'`, `'options.<name>'`), ShapeError / DisposedError /
 * EngineMismatchError (`'Qd'`).
 */
export function readImplicitOptions(f: unknown, Qd: unknown, options: unknown, known: readonly string[]): { solver: Solver; rest: Record<string, unknown> } {
  const layer = readLayer(f, 'f');
  readTensor(Qd, 'Qd', layer.engine);
  const { solver, ...rest } = readOptions(options, 'options', known);
  return { solver: readSolver<Solver>(solver, 'options.solver', broyden), rest };
}

/** @internal Runs the solver and recomputes uStar = f(uPrev); `what` names the wrapper in errors. */
export async function solveAndRecompute(f: ImplicitLayer, Qd: Tensor, options: ImplicitOptions | undefined, wantFactors: boolean, what: string): Promise<Solved> {
  const { solver, rest: solverOptions } = readImplicitOptions(f, Qd, options, IMPLICIT_OPTION_KEYS);
  // returnB is the wrapper's to decide: factors it did not ask for would never be freed.
  const result = await callSolver(solver, 'options.solver', f, Qd, { ...solverOptions, returnB: wantFactors });
  const engine = f.engine;
  const batch = Qd.shape.length === 2 ? Qd.shape[0] : 1;
  let uStar: Tensor;
  try {
    ({ uStar } = await engine.submitInto(what, () => ({ uStar: new Tensor(engine, engine.allocate(Qd.size * 4, 'Qd'), Qd.shape, true) }), (pass, out) => {
      // The open gate is inference mode: a stochastic layer (dropout) applies no noise here.
      f.encodeForward(pass, { input: result.uPrev.buffer, output: out.uStar.buffer, Qd: Qd.buffer, gate: engine.openGate() }, batch);
    }));
  } catch (err) {
    result.dispose();
    throw err;
  }
  result.uStar.dispose();
  return { layer: f, Qd, batch, result, uStar };
}

/** @internal Checks a gradient argument: a live tensor of uStar's shape on the right engine. */
export function checkGradient(engine: Engine, grad: unknown, shape: readonly number[], name: string): Tensor {
  if (!(grad instanceof Tensor)) throw new ShapeError(name, 'must be a Tensor');
  grad.assertUsable(engine, name);
  if (grad.shape.join() !== shape.join()) {
    throw new ShapeError(name, `must have uStar's shape [${shape.join(', ')}], got [${grad.shape.join(', ')}]`);
  }
  return grad;
}

const BACKWARD_KEYS = ['checkFinite', 'onUnconverged'] as const;

/** Checks `backward`'s options through the shared validator. */
function checkBackwardOptions(options: unknown): ResolvedBackwardOptions {
  const o = readOptions(options, 'options', BACKWARD_KEYS);
  return {
    checkFinite: readBoolean(o.checkFinite, 'options.checkFinite', false),
    onUnconverged: readChoice<OnUnconverged>(o.onUnconverged, 'options.onUnconverged', 'jfb', ['throw', 'jfb', 'accept']),
  };
}

/** @internal Whether `t` holds a NaN or ±Infinity: one GPU pass and a 4-byte readback. */
export async function hasNonFinite(engine: Engine, t: Tensor): Promise<boolean> {
  const kernel = await engine.kernel('nonFinite', SHADERS.nonFinite);
  const flag = engine.allocate(4, 'gradUStar');
  const encode = (encoder: GPUCommandEncoder): void => {
    encoder.clearBuffer(flag);
    const pass = encoder.beginComputePass();
    const groups = Math.min(engine.device.limits.maxComputeWorkgroupsPerDimension, Math.ceil(t.size / 256));
    kernel.dispatch(pass, kernel.bind({ params: engine.params(kernel, { n: t.size }), x: t.buffer, flag }), groups);
    pass.end();
  };
  try {
    return new Uint32Array(await engine.readBytes(flag, 4, { encode, what: 'backward' }))[0] !== 0;
  } finally {
    engine.releaseBuffer(flag);
  }
}

/** @internal Fresh tensors for a solve's gradients: one per parameter of the layer (same name and shape), and `Qd`. */
export function gradientTensors(solved: Pick<Solved, 'layer' | 'Qd'>): Record<string, Tensor> {
  const { layer, Qd } = solved;
  const engine = layer.engine;
  const grads: Record<string, Tensor> = {};
  for (const [name, param] of Object.entries(layer.params)) grads[name] = new Tensor(engine, engine.allocate(param.size * 4, name), param.shape, true);
  grads.Qd = new Tensor(engine, engine.allocate(Qd.size * 4, 'Qd'), Qd.shape, true);
  return grads;
}

/**
 * @internal
 * Encodes the VJP of f at `point` with cotangent `cotangent` in inference mode (open gate),
 * writing (not adding) the parameter and Qd gradients into `into` (buffers named as
 * {@link gradientTensors}' tensors), plus J_fᵀ·cotangent into `gradInput` when given.
 */
export function encodeVjp(
  pass: GPUComputePassEncoder,
  solved: Pick<Solved, 'layer' | 'Qd' | 'batch'>,
  point: BufferRegion,
  cotangent: BufferRegion,
  into: Readonly<Record<string, GPUBuffer>>,
  gradInput?: BufferRegion,
): void {
  const { layer, Qd, batch } = solved;
  const gradParams: Record<string, GPUBuffer> = {};
  for (const name of Object.keys(layer.params)) gradParams[name] = into[name];
  layer.encodeAdjoint(pass, { input: point, Qd: Qd.buffer, gradOutput: cotangent, gradInput, gradQd: into.Qd, gradParams, gate: layer.engine.openGate() }, batch);
}

/** @internal The buffers of gradient tensors, by the same names. */
export function buffersOf(tensors: Readonly<Record<string, Tensor>>): Record<string, GPUBuffer> {
  return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.buffer]));
}

/**
 * @internal
 * Submits the VJP of f at `point` with cotangent `cotangent` into fresh gradient tensors, after
 * `before` (more work of the same pass, e.g. GDEQ's preconditioning), checked as `'backward'`. It
 * differentiates the inference-mode step (open gate), the one that recomputed uStar: a stochastic
 * layer applies no noise (no dropout mask) in this adjoint either.
 */
export function vjp(solved: Solved, point: GPUBuffer, cotangent: GPUBuffer, before?: (pass: GPUComputePassEncoder) => void): Promise<Gradients> {
  return solved.layer.engine.submitInto('backward', () => gradientTensors(solved), (pass, grads) => {
    before?.(pass);
    encodeVjp(pass, solved, point, cotangent, buffersOf(grads));
  }) as Promise<Gradients>;
}

/** @internal What a wrapper's backward function returns: the gradients and how they were computed. */
export interface Backpropagated {
  grads: Gradients;
  info: BackwardInfo;
}

/**
 * @internal
 * Builds the result object around a solve and a backward function; guards against a second
 * backward call and use after dispose. Options are validated before the call is taken, and a
 * call that rejects gives it back.
 */
export function implicitResult(
  solved: Solved,
  backward: (grad: Tensor, options: ResolvedBackwardOptions) => Promise<Backpropagated>,
  factors?: BroydenFactors,
): ImplicitResult {
  let used = false;
  let disposed = false;
  const { result, uStar } = solved;
  const out: ImplicitResult = {
    uStar,
    uPrev: result.uPrev,
    tnstep: result.tnstep,
    stats: result.stats,
    async backward(gradUStar: Tensor, options?: BackwardOptions): Promise<Gradients> {
      const assertCallable = (): void => {
        if (disposed) throw new DisposedError('backward', 'the result was disposed');
        if (used) throw new OptionError('backward', 'was already called on this result (call the solver again for a new graph)');
      };
      assertCallable();
      const engine = solved.layer.engine;
      engine.assertAlive('backward');
      // Checked again after the wait: the result may have been disposed or used meanwhile.
      await engine.settleWraps();
      assertCallable();
      const grad = checkGradient(engine, gradUStar, uStar.shape, 'gradUStar');
      const resolved = checkBackwardOptions(options);
      // `used` is held while the call runs, so a concurrent call cannot slip in; a call that
      // rejects gives it back (the result is untouched: it can be differentiated again).
      used = true;
      try {
        if (resolved.checkFinite) {
          if (await hasNonFinite(engine, grad)) throw new NonFiniteError('gradUStar', 'holds NaN or Infinity (found by checkFinite; nothing was computed)');
          if (disposed) throw new DisposedError('backward', 'the result was disposed');
          grad.assertUsable(engine, 'gradUStar');
        }
        const { grads, info } = await backward(grad, resolved);
        out.backwardInfo = info;
        return grads;
      } catch (err) {
        used = false;
        throw err;
      }
    },
    dispose() {
      disposed = true;
      uStar.dispose();
      result.uPrev.dispose();
      factors?.Us.dispose();
      factors?.VTs.dispose();
    },
  };
  // A scope that returns this result keeps what backward uses besides its properties.
  holdValues(out, () => [factors, solved.Qd, solved.layer]);
  return out;
}

/** @internal The JFB gradient of a solve: the VJP of the last step uStar = f(uPrev) with gradUStar, submitted and checked. */
export function jfbGradients(solved: Solved, gradUStar: Tensor): Promise<Gradients> {
  return vjp(solved, solved.result.uPrev.buffer, gradUStar.buffer);
}
