/**
 * What JFB, GDEQ and IFT share: run the solver, recompute the last step uStar = f(uPrev) in
 * inference mode (the value the wrappers return), and encode a layer's VJP into gradient tensors.
 */
import type { Engine } from '../engine';
import { DisposedError, NonFiniteError, OptionError, ShapeError } from '../errors';
import { SHADERS } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import { broyden } from '../solvers/broyden';
import type { SolverOptions } from '../solvers/options';
import type { BroydenFactors, SolveResult, SolveStats } from '../solvers/run';
import { Tensor } from '../tensor';

/** A solver function: `picard`, `anderson` or `broyden`. */
export type Solver = (f: ImplicitLayer, Qd: Tensor, options?: SolverOptions) => Promise<SolveResult>;

/** Options of `jfb`, `gdeq` and `ift`: the solver and its options. */
export interface ImplicitOptions extends SolverOptions {
  /** The forward solver. Default `broyden`. */
  solver?: Solver;
}

/** Options of `backward`. */
export interface BackwardOptions {
  /**
   * Check gradUStar for NaN/±Infinity first (one GPU pass and a 4-byte readback) and reject with
   * NonFiniteError (`'gradUStar'`) before computing anything; the result stays usable. Default
   * false: no readback, and a non-finite gradUStar gives NaN gradients (JFB, GDEQ) or, for IFT,
   * an adjoint solve that stops with `backwardStats.nonFinite` and a NonFiniteError.
   */
  checkFinite?: boolean;
}

/** Gradients by parameter name (for the tanh block `w` and `b`), plus `Qd`. */
export type Gradients = { readonly Qd: Tensor } & Readonly<Record<string, Tensor>>;

/** What `jfb`, `gdeq` and `ift` return. */
export interface ImplicitResult {
  /** f(uPrev), recomputed after the solve (this is the value gradients flow through). */
  uStar: Tensor;
  uPrev: Tensor;
  tnstep: number;
  stats: SolveStats;
  /**
   * Gradients of a loss with ∂loss/∂uStar = gradUStar. Call once (a call rejected for its
   * arguments does not count).
   * @throws ShapeError / DisposedError / EngineMismatchError (`'gradUStar'`), NonFiniteError
   * (`'gradUStar'`, see {@link BackwardOptions.checkFinite}), OptionError (`'backward'`: called
   * again; `'options…'`), DisposedError (`'backward'`: after dispose()).
   */
  backward(gradUStar: Tensor, options?: BackwardOptions): Promise<Gradients>;
  /** Frees uStar, uPrev and the solver's factors. */
  dispose(): void;
}

/** A solve whose uStar has been recomputed as f(uPrev). */
export interface Solved {
  layer: ImplicitLayer;
  Qd: Tensor;
  batch: number;
  result: SolveResult;
  uStar: Tensor;
}

/** Runs the solver and recomputes uStar = f(uPrev); `what` names the wrapper in errors. */
export async function solveAndRecompute(f: ImplicitLayer, Qd: Tensor, options: ImplicitOptions | undefined, wantFactors: boolean, what: string): Promise<Solved> {
  const { solver = broyden, ...solverOptions } = options ?? {};
  if (typeof solver !== 'function') throw new OptionError('options.solver', 'must be picard, anderson or broyden');
  // returnB is the wrapper's to decide: factors it did not ask for would never be freed.
  const result = await solver(f, Qd, { ...solverOptions, returnB: wantFactors });
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

/** Checks a gradient argument: a live tensor of uStar's shape on the right engine. */
export function checkGradient(engine: Engine, grad: unknown, shape: readonly number[], name: string): Tensor {
  if (!(grad instanceof Tensor)) throw new ShapeError(name, 'must be a Tensor');
  grad.assertUsable(engine, name);
  if (grad.shape.join() !== shape.join()) {
    throw new ShapeError(name, `must have uStar's shape [${shape.join(', ')}], got [${grad.shape.join(', ')}]`);
  }
  return grad;
}

/** Checks `backward`'s options. */
function checkBackwardOptions(options: unknown): BackwardOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new OptionError('options', 'must be an object');
  const { checkFinite } = options as Record<string, unknown>;
  if (checkFinite !== undefined && typeof checkFinite !== 'boolean') throw new OptionError('options.checkFinite', 'must be a boolean');
  return { checkFinite };
}

/** Whether `t` holds a NaN or ±Infinity: one GPU pass and a 4-byte readback. */
async function hasNonFinite(engine: Engine, t: Tensor): Promise<boolean> {
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
    return new Uint32Array(await engine.readBytes(flag, 4, 0, encode, 'backward'))[0] !== 0;
  } finally {
    engine.releaseBuffer(flag);
  }
}

/**
 * Submits the VJP of f at `point` with cotangent `cotangent` into fresh gradient tensors, after
 * `before` (more work of the same pass, e.g. GDEQ's preconditioning), checked as `'backward'`. It
 * differentiates the inference-mode step (open gate), the one that recomputed uStar: a stochastic
 * layer applies no noise (no dropout mask) in this adjoint either.
 */
export function vjp(solved: Solved, point: GPUBuffer, cotangent: GPUBuffer, before?: (pass: GPUComputePassEncoder) => void): Promise<Gradients> {
  const { layer, Qd, batch } = solved;
  const engine = layer.engine;
  const outputs = (): Record<string, Tensor> => {
    const grads: Record<string, Tensor> = {};
    for (const [name, param] of Object.entries(layer.params)) grads[name] = new Tensor(engine, engine.allocate(param.size * 4, name), param.shape, true);
    grads.Qd = new Tensor(engine, engine.allocate(Qd.size * 4, 'Qd'), Qd.shape, true);
    return grads;
  };
  return engine.submitInto('backward', outputs, (pass, grads) => {
    before?.(pass);
    const gradParams: Record<string, GPUBuffer> = {};
    for (const name of Object.keys(layer.params)) gradParams[name] = grads[name].buffer;
    layer.encodeAdjoint(pass, { input: point, Qd: Qd.buffer, gradOutput: cotangent, gradQd: grads.Qd.buffer, gradParams, gate: engine.openGate() }, batch);
  }) as Promise<Gradients>;
}

/**
 * Builds the result object around a solve and a backward function; guards against a second
 * backward call and use after dispose.
 */
export function implicitResult(solved: Solved, backward: (grad: Tensor) => Promise<Gradients>, factors?: BroydenFactors): ImplicitResult {
  let used = false;
  let disposed = false;
  const { result, uStar } = solved;
  return {
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
      const { checkFinite = false } = checkBackwardOptions(options);
      used = true;
      if (checkFinite) {
        // `used` is held while the flag is read, so a concurrent call cannot slip in; a
        // rejected check gives the call back.
        let bad: boolean;
        try {
          bad = await hasNonFinite(engine, grad);
        } catch (err) {
          used = false;
          throw err;
        }
        if (bad) {
          used = false;
          throw new NonFiniteError('gradUStar', 'holds NaN or Infinity (found by checkFinite; nothing was computed)');
        }
        if (disposed) throw new DisposedError('backward', 'the result was disposed');
        grad.assertUsable(engine, 'gradUStar');
      }
      return backward(grad);
    },
    dispose() {
      disposed = true;
      uStar.dispose();
      result.uPrev.dispose();
      factors?.Us.dispose();
      factors?.VTs.dispose();
    },
  };
}
