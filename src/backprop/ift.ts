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
import { implicitResult, solveAndRecompute, vjp, type ImplicitOptions, type ImplicitResult, type Solver } from './implicit';

/** Options of `ift`: the forward solver and the adjoint solve. */
export interface IftOptions extends ImplicitOptions {
  /** Solver of the adjoint equation. Default `broyden`. */
  backwardSolver?: Solver;
  /**
   * Its tolerance on the relative residual ‖r‖ / ‖J_fᵀλ + gradUStar‖ (relative, so that it stays
   * reachable in float32 whatever the gradient's scale; an absolute 1e-6 is below float32's
   * floor once ‖gradUStar‖ ≳ 10). Default 1e-6.
   */
  backwardEps?: number;
  /** Its iteration limit. Default 100. */
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

const BACKWARD_KEYS = new Set(['backwardSolver', 'backwardEps', 'backwardMaxDepth']);

/** Solves for the fixed point and returns it with an exact implicit-gradient `backward`. */
export async function ift(f: ImplicitLayer, Qd: Tensor, options?: IftOptions): Promise<IftResult> {
  const forwardOptions: ImplicitOptions = {};
  for (const [key, value] of Object.entries(options ?? {})) {
    if (!BACKWARD_KEYS.has(key)) (forwardOptions as Record<string, unknown>)[key] = value;
  }
  const backwardSolver = options?.backwardSolver ?? broyden;
  if (typeof backwardSolver !== 'function') throw new OptionError('options.backwardSolver', 'must be picard, anderson or broyden');
  const backwardEps = options?.backwardEps ?? 1e-6;
  const backwardMaxDepth = options?.backwardMaxDepth ?? 100;
  const solved = await solveAndRecompute(f, Qd, forwardOptions, false, 'ift');
  const out: IftResult = implicitResult(solved, async (gradUStar) => {
    const system = new AdjointSystem(f, solved.uStar.buffer, Qd.buffer);
    // Inference mode: the system is linearised at the noise-free u*, and its evaluations must not
    // draw noise either (the adjoint solve's gate would otherwise turn dropout on).
    const adjoint = await backwardSolver(system, gradUStar, { eps: backwardEps, stopMode: 'rel', maxDepth: backwardMaxDepth, inference: true });
    out.backwardStats = adjoint.stats;
    if (adjoint.stats.nonFinite) {
      // Its best finite iterate (often λ = 0) would give silently wrong gradients.
      adjoint.dispose();
      throw new NonFiniteError('gradUStar', 'the adjoint solve λ = J_fᵀλ + gradUStar met NaN or Infinity (a non-finite gradUStar, or an adjoint iteration that overflowed); see backwardStats');
    }
    try {
      return await vjp(solved, solved.uStar.buffer, adjoint.uStar.buffer);
    } finally {
      adjoint.dispose();
    }
  });
  return out;
}
