/**
 * Exact implicit gradients (beyond the original): at the fixed point u*, solve the adjoint
 * equation λ = J_fᵀ λ + gradUStar with a GPU solver, then take the VJP of f at u* with λ.
 * The adjoint equation is itself a fixed-point problem, so it is handed to the same solvers
 * as a layer whose "forward" is λ ↦ J_f(u*)ᵀ λ + Qd (with Qd = gradUStar).
 */
import { NonFiniteError, OptionError } from '../errors';
import type { AdjointIO, ForwardIO, ImplicitLayer } from '../layers/layer';
import { broyden } from '../solvers/broyden';
import type { SolveStats } from '../solvers/run';
import type { Tensor } from '../tensor';
import {
  IMPLICIT_OPTION_KEYS, callSolver, implicitResult, readImplicitOptions, solveAndRecompute, vjp,
  type ImplicitOptions, type ImplicitResult, type Solver,
} from './implicit';
import { MAX_DEPTH } from '../solvers/options';
import { F32_MAX, readInteger, readNumber, readSolver } from '../validate';

/** Options of `ift`: the forward solver and the adjoint solve. */
export interface IftOptions extends ImplicitOptions {
  /** Solver of the adjoint equation. Default `broyden`. */
  backwardSolver?: Solver;
  /**
   * Its tolerance on the relative residual ‖r‖ / ‖J_fᵀλ + gradUStar‖ (relative, so that it stays
   * reachable in float32 whatever the gradient's scale; an absolute 1e-6 is below float32's
   * floor once ‖gradUStar‖ ≳ 10). A finite float32. Default 1e-6.
   */
  backwardEps?: number;
  /** Its iteration limit, an integer in [1, 2²⁰] (as `maxDepth`). Default 100. */
  backwardMaxDepth?: number;
}

/** `ift`'s result: `backwardStats` holds the adjoint solve's statistics once `backward` ran. */
export interface IftResult extends ImplicitResult {
  backwardStats?: SolveStats;
}

/** λ ↦ J_f(u*)ᵀ λ + Qd, linearised at a fixed point. */
class AdjointSystem implements ImplicitLayer {
  readonly params = {};
  constructor(
    private readonly f: ImplicitLayer,
    private readonly point: GPUBuffer,
    private readonly Qd: GPUBuffer,
  ) {}
  get engine() {
    return this.f.engine;
  }
  get featureSize() {
    return this.f.featureSize;
  }
  prepare(batch: number): Promise<void> {
    return this.f.prepare(batch);
  }
  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    this.f.encodeAdjoint(pass, {
      input: this.point, Qd: this.Qd, gradOutput: io.input, gradInput: io.output, gradInputAdd: io.Qd, gate: io.gate,
    }, batch);
  }
  encodeAdjoint(_pass: GPUComputePassEncoder, _io: AdjointIO): void {
    throw new OptionError('f', 'the IFT adjoint system has no adjoint of its own');
  }
}

const BACKWARD_KEYS = ['backwardSolver', 'backwardEps', 'backwardMaxDepth'];

/**
 * Solves for the fixed point and returns it with an exact implicit-gradient `backward`.
 * @throws as the solvers, and OptionError (`'options.backwardSolver'`, `'options.backwardEps'`,
 * `'options.backwardMaxDepth'`: checked before the forward solve).
 */
export async function ift(f: ImplicitLayer, Qd: Tensor, options?: IftOptions): Promise<IftResult> {
  const { rest } = readImplicitOptions(f, Qd, options, [...IMPLICIT_OPTION_KEYS, ...BACKWARD_KEYS]);
  const { backwardSolver: givenSolver, backwardEps: givenEps, backwardMaxDepth: givenDepth, ...forward } = rest;
  const forwardOptions = { ...forward, solver: options?.solver } as ImplicitOptions;
  const backwardSolver = readSolver<Solver>(givenSolver, 'options.backwardSolver', broyden);
  const backwardEps = readNumber(givenEps, 'options.backwardEps', 1e-6, { min: -F32_MAX, max: F32_MAX });
  const backwardMaxDepth = readInteger(givenDepth, 'options.backwardMaxDepth', 100, 1, MAX_DEPTH);
  const solved = await solveAndRecompute(f, Qd, forwardOptions, false);
  const out: IftResult = implicitResult(solved, async (gradUStar) => {
    const system = new AdjointSystem(f, solved.uStar.buffer, Qd.buffer);
    // Inference mode: the system is linearised at the noise-free u*, and its evaluations must not
    // draw noise either (the adjoint solve's gate would otherwise turn dropout on).
    // The forward's timeoutMs bounds the adjoint solve too (it runs the layer's adjoint kernels).
    const limit = options?.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    const adjoint = await callSolver(backwardSolver, 'options.backwardSolver', system, gradUStar, {
      eps: backwardEps, stopMode: 'rel', maxDepth: backwardMaxDepth, inference: true, ...limit,
    });
    out.backwardStats = adjoint.stats;
    if (adjoint.stats.nonFinite) {
      // Its best finite iterate (often λ = 0) would give silently wrong gradients.
      adjoint.dispose();
      throw new NonFiniteError('gradUStar', 'the adjoint solve λ = J_fᵀλ + gradUStar met NaN or Infinity (a non-finite gradUStar, or an adjoint iteration that overflowed); see backwardStats');
    }
    const encoder = f.engine.device.createCommandEncoder({ label: 'anchorax ift backward' });
    const grads = vjp(solved, solved.uStar.buffer, adjoint.uStar.buffer, encoder);
    f.engine.device.queue.submit([encoder.finish()]);
    adjoint.dispose();
    return grads;
  });
  return out;
}
