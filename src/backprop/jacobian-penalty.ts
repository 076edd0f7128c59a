/**
 * A Jacobian regulariser for training: a Hutchinson estimate of ‖J_f‖_F² at the fixed point and
 * its gradient, from the layer's own forward and VJP kernels (no second-order kernel, so every
 * layer has it, `defineLayer` ones included), on the GPU with no readback.
 */
import { OptionError, ShapeError } from '../errors';
import { SHADERS } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import { dispatchElementwise, region } from '../optim/common';
import { Tensor } from '../tensor';
import { describe, F32_MAX, readInteger, readNumber, readOptions } from '../validate';
import { encodeVjp, gradientTensors, type Gradients } from './implicit';
import { readStatePoint } from './stability';

/**
 * Default finite-difference step of {@link jacobianPenalty}: the step that minimised the
 * gradient's error on tanh blocks (docs/architecture.md, Stability tools).
 */
export const JACOBIAN_PENALTY_H = 3e-3;

/** Options of {@link jacobianPenalty}. */
export interface JacobianPenaltyOptions {
  /** Hutchinson vectors, an integer in [1, 4096]. Default 1 (TorchDEQ's `jac_reg` default too). */
  samples?: number;
  /**
   * Finite-difference step h, absolute: the points are u ± h·v with v of ±1 entries, so states
   * of order 1 (tanh layers, normalised states) are assumed; for states of scale s use about
   * s·h. In (0, 1]. Default {@link JACOBIAN_PENALTY_H}.
   */
  h?: number;
  /** Scale of the penalty: `grads` is the gradient of `weight · estimate`. In [0, F32_MAX]. Default 1. */
  weight?: number;
  /** Seed of the ±1 vectors, a u32 (pass the step number for fresh vectors each step). Default 0. */
  seed?: number;
  /**
   * Gradients to add the penalty's gradient to instead of returning fresh tensors: one tensor
   * per parameter of f (same names and shapes) and `Qd` (Qd's shape), e.g. what `backward`
   * returned; none may be a parameter of f, Qd or uStar.
   */
  addTo?: Gradients;
}

/** What {@link jacobianPenalty} returns. */
export interface JacobianPenalty {
  /** `[1]`: the estimate of ‖J_f‖_F² / n (n = Qd.size), unweighted. */
  estimate: Tensor;
  /**
   * The gradient of `weight · estimate` with uStar held constant, by parameter name plus `Qd`
   * (the shapes `backward` gives): fresh tensors, or `options.addTo` with it added.
   */
  grads: Gradients;
  /** Frees `estimate` and, unless they are `options.addTo`'s, `grads`. */
  dispose(): void;
}

const OPTION_KEYS = ['samples', 'h', 'weight', 'seed', 'addTo'] as const;

/**
 * Checks `options.addTo`: exactly f's parameter names and `Qd`, live tensors of the right shapes,
 * each on its own buffer, none a buffer the call reads.
 */
function readAddTo(value: unknown, f: ImplicitLayer, Qd: Tensor, uStar: Tensor): Gradients | undefined {
  if (value === undefined) return undefined;
  const shapes: Record<string, readonly number[]> = { ...Object.fromEntries(Object.entries(f.params).map(([name, p]) => [name, p.shape])), Qd: Qd.shape };
  const o = readOptions(value, 'options.addTo', Object.keys(shapes));
  const read = new Map<GPUBuffer, string>([...Object.entries(f.params).map(([name, p]): [GPUBuffer, string] => [p.buffer, `f.params.${name}`]), [Qd.buffer, 'Qd'], [uStar.buffer, 'uStar']]);
  for (const [name, shape] of Object.entries(shapes)) {
    const argument = `options.addTo.${name}`;
    const t = o[name];
    if (t === undefined) throw new OptionError(argument, `is missing: addTo needs a tensor for every parameter of f and Qd (${Object.keys(shapes).join(', ')})`);
    if (!(t instanceof Tensor)) throw new ShapeError(argument, `must be a Tensor, got ${describe(t)}`);
    t.assertUsable(f.engine, argument);
    if (t.shape.join() !== shape.join()) throw new ShapeError(argument, `must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
    const clash = read.get(t.buffer);
    if (clash !== undefined) throw new ShapeError(argument, `is the same GPU buffer as ${clash}`);
    read.set(t.buffer, argument);
  }
  return o as Gradients;
}

/**
 * A Hutchinson estimate of the squared Frobenius norm of J_f = ∂f/∂u at (uStar, Qd), per state
 * element, and the gradient of `weight` times it, for a training loop to add to its gradients
 * (penalising ‖J_f‖ keeps f contractive, so solves stay short: Bai et al., "Stabilizing
 * equilibrium models by Jacobian regularization", 2021). With `samples` = S vectors v_s of
 * independent ±1 entries (E[v vᵀ] = I, so E‖J v‖² = ‖J‖_F²):
 *
 *   estimate = Σ_s ‖J v_s‖² / (S·n),   n = Qd.size (batch · d)
 *
 * — normalised by the state's size, batch included, as TorchDEQ's `jac_reg`; with a batch J_f is
 * block diagonal, so this is the mean over rows of ‖J_row‖_F² / d. First-order kernels only:
 * J v ≈ (f(u + hv) − f(u − hv)) / 2h, and ‖Jv‖²'s parameter gradient is
 * 2·(∂(Jv)/∂θ)ᵀ Jv ≈ (VJP_θ(u + hv; Jv) − VJP_θ(u − hv; Jv)) / h, the difference of two VJPs
 * of the layer (the same for `Qd`). uStar is held constant (its dependence on the parameters
 * is not differentiated, as JFB holds uPrev), and both steps run in inference mode (open gate:
 * a stochastic layer draws no noise).
 *
 * Finite-difference error: the central difference is exact for a linear f and off by O(h²)
 * (relative, times f's third derivative) otherwise; float32 rounding adds O(ε/h) with ε ≈ 6e-8,
 * scaled by the sums inside f. The default h (docs/architecture.md has the measurements)
 * balances the two for layers whose states are of order 1.
 *
 * Cost per sample: 2 evaluations and 2 VJPs of f, in one submit; nothing is read back (`await
 * (await jacobianPenalty(…)).estimate.read()` reads the estimate).
 * @throws OptionError (`'f'`, `'options'`, `'options.samples'`, `'options.h'`, `'options.weight'`,
 * `'options.seed'`, `'options.addTo'`, `'options.addTo.<name>'`: unknown or missing), ShapeError /
 * DisposedError / EngineMismatchError (`'Qd'`, `'uStar'`, `'options.addTo.<name>'`), DeviceLostError.
 */
export async function jacobianPenalty(f: ImplicitLayer, Qd: Tensor, uStar: Tensor, options?: JacobianPenaltyOptions): Promise<JacobianPenalty> {
  const { engine, batch, n } = readStatePoint(f, Qd, uStar);
  const o = readOptions(options, 'options', OPTION_KEYS);
  const samples = readInteger(o.samples, 'options.samples', 1, 1, 4096);
  const h = readNumber(o.h, 'options.h', JACOBIAN_PENALTY_H, { above: 0, max: 1 });
  const weight = readNumber(o.weight, 'options.weight', 1, { min: 0, max: F32_MAX });
  const seed = readInteger(o.seed, 'options.seed', 0, 0, 0xffffffff);
  readAddTo(o.addTo, f, Qd, uStar);
  await f.prepare(batch);
  const [penalty, accumulate] = await Promise.all([
    Promise.all([engine.kernel('jacobianPenalty.points', SHADERS.jacobianPenalty, 'points'), engine.kernel('jacobianPenalty.cotangent', SHADERS.jacobianPenalty, 'cotangent')]),
    engine.kernel('accumulate', SHADERS.accumulate),
  ]);
  const [pointsKernel, cotangentKernel] = penalty;
  await engine.settleWraps();
  // Checked again after the waits: a tensor may have been disposed meanwhile.
  const { batch: rows } = readStatePoint(f, Qd, uStar);
  const addTo = readAddTo(o.addTo, f, Qd, uStar);

  const state = (): GPUBuffer => engine.allocate(n * 4, 'uStar');
  const [plus, minus, fPlus, fMinus, jv] = [state(), state(), state(), state(), state()];
  const scratch = gradientTensors({ layer: f, Qd });
  const estimate = new Tensor(engine, engine.allocate(4, 'estimate'), [1], true);
  const grads = addTo ?? (gradientTensors({ layer: f, Qd }) as Gradients);
  // Each sample adds κ·(VJP at u + hv − VJP at u − hv): the gradient of weight · estimate.
  const kappa = weight / (samples * n * h);
  const meanScale = 1 / (samples * n);
  const at = { layer: f, Qd, batch: rows };
  const scratchBuffers = Object.fromEntries(Object.entries(scratch).map(([name, t]) => [name, t.buffer]));
  const addScratch = (pass: GPUComputePassEncoder, alpha: number, beta: number): void => {
    const params = engine.params(accumulate, { alpha, beta });
    for (const [name, target] of Object.entries(grads)) {
      dispatchElementwise(engine, pass, accumulate, accumulate.bind({ params, x: region(scratch[name]), y: region(target) }), target.size);
    }
  };
  try {
    await engine.submitPass('jacobianPenalty', (pass) => {
      const bindings = { u: uStar.buffer, plus, minus, f_plus: fPlus, f_minus: fMinus, jv, estimate: estimate.buffer };
      const groups = Math.min(Math.ceil(n / 256), engine.device.limits.maxComputeWorkgroupsPerDimension);
      for (let s = 0; s < samples; s++) {
        const first = s === 0 ? 1 : 0;
        const pointParams = engine.params(pointsKernel, { n, seed, sample: s, first: 0, h, inv_2h: 0, mean_scale: 0 });
        pointsKernel.dispatch(pass, pointsKernel.bind({ params: pointParams, ...bindings }), groups);
        for (const [input, output] of [[plus, fPlus], [minus, fMinus]]) f.encodeForward(pass, { input, output, Qd: Qd.buffer, gate: engine.openGate() }, rows);
        const cotangentParams = engine.params(cotangentKernel, { n, seed: 0, sample: 0, first, h: 0, inv_2h: 1 / (2 * h), mean_scale: meanScale });
        cotangentKernel.dispatch(pass, cotangentKernel.bind({ params: cotangentParams, ...bindings }), 1);
        encodeVjp(pass, at, plus, jv, scratchBuffers);
        // The first sample overwrites fresh gradients (alpha 0: their pooled contents are never read).
        addScratch(pass, first && !addTo ? 0 : 1, kappa);
        encodeVjp(pass, at, minus, jv, scratchBuffers);
        addScratch(pass, 1, -kappa);
      }
    });
  } catch (err) {
    estimate.dispose();
    if (!addTo) for (const t of Object.values(grads)) t.dispose();
    throw err;
  } finally {
    for (const buffer of [plus, minus, fPlus, fMinus, jv]) engine.releaseBuffer(buffer);
    for (const t of Object.values(scratch)) t.dispose();
  }
  return {
    estimate,
    grads,
    dispose() {
      estimate.dispose();
      if (!addTo) for (const t of Object.values(grads)) t.dispose();
    },
  };
}
