/**
 * Exact implicit gradients (beyond the original): at the fixed point u*, solve the adjoint
 * equation λ = J_fᵀ λ + gradUStar with a GPU solver, then take the VJP of f at u* with λ.
 * The adjoint equation is itself a fixed-point problem, so it is handed to the same solvers
 * as a layer whose "forward" is λ ↦ J_f(u*)ᵀ λ + Qd (with Qd = gradUStar).
 */
import { ConvergenceError, NonFiniteError, OptionError } from '../errors';
import type { AdjointIO, ForwardIO, ImplicitLayer } from '../layers/layer';
import { broyden } from '../solvers/broyden';
import type { SolveResult, SolveStats, Solver } from '../results';
import type { Tensor } from '../tensor';
import {
  IMPLICIT_OPTION_KEYS, callSolver, hasNonFinite, implicitResult, jfbGradients, readImplicitOptions, solveAndRecompute, vjp,
  type Backpropagated, type ImplicitOptions, type ImplicitResult, type ResolvedBackwardOptions, type Solved,
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
   * floor once ‖gradUStar‖ ≳ 10). A finite float32 ≥ 0 (0 runs to backwardMaxDepth). Default
   * 1e-6. What happens when it is not reached: `backward`'s `onUnconverged` option.
   */
  backwardEps?: number;
  /** Its iteration limit, an integer in [1, 2²⁰] (as `maxDepth`). Default 100. */
  backwardMaxDepth?: number;
}

/** `ift`'s result. */
export interface IftResult extends ImplicitResult {
  /**
   * The statistics of the last adjoint solve (`converged`, `relResidual`, `nstep`, …), set once
   * it ran, also when `backward` then rejected or fell back to JFB (see `backwardInfo`).
   */
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

const BACKWARD_KEYS: readonly string[] = ['backwardSolver', 'backwardEps', 'backwardMaxDepth'];

/** Reads `gradients` from the adjoint solution (or the JFB fallback) as `onUnconverged` says. */
async function adjointGradients(
  solved: Solved,
  gradUStar: Tensor,
  adjoint: SolveResult,
  options: ResolvedBackwardOptions,
  backwardEps: number,
): Promise<Backpropagated> {
  const { stats } = adjoint;
  const engine = solved.layer.engine;
  /** The VJP at u* with the adjoint's λ. */
  const iftGradients = async (): Promise<Backpropagated> => ({
    grads: await vjp(solved, solved.uStar.buffer, adjoint.uStar.buffer),
    info: { method: 'ift', converged: stats.converged, fellBack: false },
  });
  if (stats.converged) return iftGradients();
  // A NaN in gradUStar reaches the adjoint solve as a NaN residual: no fallback can help, so say
  // which argument it is (one 4-byte readback, on this failure path only).
  if (stats.nonFinite && (await hasNonFinite(engine, gradUStar))) {
    throw new NonFiniteError('gradUStar', 'holds NaN or Infinity: the adjoint solve λ = J_fᵀλ + gradUStar met it (see backwardStats)');
  }
  const what = stats.nonFinite
    ? `diverged (NaN/Infinity after ${stats.nstep} iterations)`
    : `stopped at relative residual ${stats.relResidual.toPrecision(3)} > backwardEps ${backwardEps} after ${stats.nstep} iterations`;
  if (options.onUnconverged === 'jfb') {
    return { grads: await jfbGradients(solved, gradUStar), info: { method: 'jfb', converged: false, fellBack: true } };
  }
  if (options.onUnconverged === 'accept' && !stats.nonFinite) return iftGradients();
  throw new ConvergenceError(
    'backward',
    `the IFT adjoint solve λ = J_fᵀλ + gradUStar ${what} (see backwardStats); raise backwardMaxDepth or backwardEps, ` +
      `or pass { onUnconverged: 'jfb' } to get the JFB gradient instead`,
  );
}

/**
 * Solves for the fixed point and returns it with an exact implicit-gradient `backward`.
 * @throws as the solvers, and OptionError (`'options.backwardSolver'`, `'options.backwardEps'`,
 * `'options.backwardMaxDepth'`: checked before the forward solve). What an unconverged adjoint
 * solve gives: `backward`'s `onUnconverged` option.
 */
export async function ift(f: ImplicitLayer, Qd: Tensor, options?: IftOptions): Promise<IftResult> {
  const { rest } = readImplicitOptions(f, Qd, options, [...IMPLICIT_OPTION_KEYS, ...BACKWARD_KEYS]);
  const { backwardSolver: givenSolver, backwardEps: givenEps, backwardMaxDepth: givenDepth, ...forward } = rest;
  const forwardOptions = { ...forward, solver: options?.solver } as ImplicitOptions;
  const backwardSolver = readSolver<Solver>(givenSolver, 'options.backwardSolver', broyden);
  const backwardEps = readNumber(givenEps, 'options.backwardEps', 1e-6, { min: 0, max: F32_MAX });
  const backwardMaxDepth = readInteger(givenDepth, 'options.backwardMaxDepth', 100, 1, MAX_DEPTH);
  const solved = await solveAndRecompute(f, Qd, forwardOptions, false, 'ift');
  const out: IftResult = implicitResult(solved, async (gradUStar, backwardOptions) => {
    const system = new AdjointSystem(f, solved.uStar.buffer, Qd.buffer);
    // Inference mode: the system is linearised at the noise-free u*, and its evaluations must not
    // draw noise either (the adjoint solve's gate would otherwise turn dropout on).
    // The forward's timeoutMs bounds the adjoint solve too (it runs the layer's adjoint kernels).
    const limit = options?.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    const adjoint = await callSolver(backwardSolver, 'options.backwardSolver', system, gradUStar, {
      eps: backwardEps, stopMode: 'rel', maxDepth: backwardMaxDepth, inference: true, ...limit,
    });
    out.backwardStats = adjoint.stats;
    try {
      return await adjointGradients(solved, gradUStar, adjoint, backwardOptions, backwardEps);
    } finally {
      adjoint.dispose();
    }
  });
  return out;
}
