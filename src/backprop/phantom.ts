/**
 * Phantom gradients: instead of the exact implicit gradient (IFT) or the last step's alone (JFB),
 * the gradient of k damped fixed-point steps u ← (1 − λ)u + λ f(u) started at the solve's fixed
 * point (TorchDEQ's unrolled phantom gradient), or the truncated Neumann series of the same damped
 * map. Everything runs on the GPU with the layer's own forward and adjoint kernels; the damped
 * combinations use the elementwise `y ← α·y + β·x` kernel (shaders/accumulate.wgsl), outside any
 * solve, so no gate is needed there.
 */
import type { Engine } from '../engine';
import type { BufferRegion, Kernel } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import { dispatchElementwise } from '../optim/common';
import { MAX_DEPTH } from '../solvers/options';
import { Tensor } from '../tensor';
import { readChoice, readInteger, readNumber } from '../validate';
import {
  IMPLICIT_OPTION_KEYS, buffersOf, encodeVjp, gradientTensors, implicitResult, readImplicitOptions, solveAndRecompute,
  type Gradients, type ImplicitOptions, type ImplicitResult, type Solved,
} from './implicit';

/** The two phantom gradients (see {@link PhantomOptions.form}). */
export type PhantomForm = 'unrolled' | 'neumann';

/** Options of `phantom`: the forward solver and its options, and the phantom steps. */
export interface PhantomOptions extends ImplicitOptions {
  /** k, the number of damped steps (unrolled) or series terms (neumann): an integer in [1, 2²⁰]. Default 5. */
  steps?: number;
  /** λ, the damping of u ← (1 − λ)u + λ f(u): a number in (0, 1]. Default 0.5. */
  damping?: number;
  /**
   * - `'unrolled'` (default): from u_0 = uPrev (a constant), k steps u_{i+1} = (1 − λ)u_i + λ f(u_i);
   *   `uStar` is u_k and the gradients are those of u_k, by reverse accumulation through the k
   *   steps: g_k = gradUStar, and for i = k − 1 … 0, ∂θ += λ·VJP_θ f(u_i)ᵀ g_{i+1},
   *   g_i = (1 − λ)g_{i+1} + λ·J_f(u_i)ᵀ g_{i+1} (θ: the parameters and Qd).
   * - `'neumann'`: `uStar` is f(uPrev) (as `jfb`), and the gradients are VJP_θ f(uPrev)ᵀ h with
   *   h = λ Σ_{i<k} ((1 − λ)I + λJ_fᵀ)ⁱ gradUStar — the first k terms of the series of
   *   (I − J_fᵀ)⁻¹ gradUStar, the IFT adjoint, written for the damped map (1 − λ)u + λ f(u), whose
   *   fixed point is f's. h is k damped Picard iterations h ← (1 − λ)h + λ(J_fᵀh + gradUStar) on the
   *   IFT adjoint equation from h = 0, all linearised at uPrev.
   *
   * At an exact fixed point the two forms coincide; with k = 1 and λ = 1 both are `jfb` exactly.
   */
  form?: PhantomForm;
}

const PHANTOM_KEYS: readonly string[] = ['steps', 'damping', 'form'];

/** What the phantom encoders need: the solve, the step settings and the `y ← α·y + β·x` kernel. */
interface Phantom {
  solved: Solved;
  steps: number;
  damping: number;
  axpby: Kernel;
}

/** A region of exactly n floats: the kernel takes its length from `arrayLength`, and pooled buffers may be larger. */
function floats(buffer: GPUBuffer, n: number): BufferRegion {
  return { buffer, offset: 0, size: n * 4 };
}

/** Encodes y ← α·y + β·x over n floats (α = 0: y is written, never read). */
function encodeAxpby(pass: GPUComputePassEncoder, p: Phantom, y: GPUBuffer, x: GPUBuffer, alpha: number, beta: number, n: number): void {
  const engine = p.solved.layer.engine;
  const params = engine.params(p.axpby, { alpha, beta });
  dispatchElementwise(engine, pass, p.axpby, p.axpby.bind({ params, x: floats(x, n), y: floats(y, n) }), n);
}

/**
 * Encodes `to ← (1 − λ)·from + λ·to`, the damping of a step whose f(from) is in `to` (nothing when
 * λ = 1, where the step is f alone).
 */
function encodeDamping(pass: GPUComputePassEncoder, p: Phantom, to: GPUBuffer, from: GPUBuffer): void {
  if (p.damping < 1) encodeAxpby(pass, p, to, from, p.damping, 1 - p.damping, p.solved.Qd.size);
}

/** Encodes one damped step `to = (1 − λ)·from + λ f(from)` in inference mode. */
function encodeStep(pass: GPUComputePassEncoder, p: Phantom, from: GPUBuffer, to: GPUBuffer): void {
  const { layer, Qd, batch } = p.solved;
  layer.encodeForward(pass, { input: from, output: to, Qd: Qd.buffer, gate: layer.engine.openGate() }, batch);
  encodeDamping(pass, p, to, from);
}

/** Buffers taken from the engine's pool for one submit, all given back by `release`. */
class Scratch {
  private readonly taken: GPUBuffer[] = [];
  constructor(private readonly engine: Engine) {}
  take(bytes: number, argument: string): GPUBuffer {
    const buffer = this.engine.allocate(bytes, argument);
    this.taken.push(buffer);
    return buffer;
  }
  release(): void {
    for (const buffer of this.taken.splice(0)) this.engine.releaseBuffer(buffer);
  }
}

/**
 * The unrolled form's u_k: solved.uStar holds f(u_0) already (u_0 = uPrev), so step 1 is its
 * damping; the other k − 1 steps alternate between it and one more tensor. Returns the solve with
 * uStar = u_k (the other tensor disposed).
 */
async function unroll(p: Phantom): Promise<Solved> {
  const { solved, steps } = p;
  const { engine } = solved.layer;
  const { Qd } = solved;
  const { spare } = await engine.submitInto(
    'phantom',
    () => ({ spare: steps > 1 ? new Tensor(engine, engine.allocate(Qd.size * 4, 'Qd'), Qd.shape, true) : undefined }),
    (pass, out) => {
      const states = [solved.uStar.buffer, out.spare?.buffer ?? solved.uStar.buffer];
      encodeDamping(pass, p, states[0], solved.result.uPrev.buffer);
      for (let i = 1; i < steps; i++) encodeStep(pass, p, states[(i - 1) % 2], states[i % 2]);
    },
  );
  if (!spare) return solved;
  const [last, other] = steps % 2 === 1 ? [solved.uStar, spare] : [spare, solved.uStar];
  other.dispose();
  return { ...solved, uStar: last };
}

/**
 * The unrolled form's gradients, in one submit: u_1 … u_{k−1} recomputed from uPrev (the result
 * holds only u_0 and u_k between forward and backward), then the reverse recursion with the damping
 * folded into the cotangent, q_i = λ·g_i: q_k = λ·gradUStar, ∂θ += VJP_θ f(u_i)ᵀ q_{i+1},
 * q_i = (1 − λ)q_{i+1} + λ·J_f(u_i)ᵀ q_{i+1}. The first VJP (i = k − 1) writes the gradient
 * tensors, the others go through scratch buffers and are added.
 */
function unrolledGradients(p: Phantom, gradUStar: Tensor): Promise<Gradients> {
  const { solved, steps, damping } = p;
  const { layer, Qd } = solved;
  const engine = layer.engine;
  const n = Qd.size;
  const scratch = new Scratch(engine);
  const pending = engine.submitInto('backward', () => gradientTensors(solved), (pass, grads) => {
    const states = [solved.result.uPrev.buffer];
    for (let i = 1; i < steps; i++) {
      states.push(scratch.take(n * 4, 'Qd'));
      encodeStep(pass, p, states[i - 1], states[i]);
    }
    const cotangents = steps > 1 || damping < 1 ? [scratch.take(n * 4, 'Qd'), scratch.take(n * 4, 'Qd')] : [];
    let q = gradUStar.buffer;
    if (damping < 1) {
      encodeAxpby(pass, p, cotangents[0], q, 0, damping, n);
      q = cotangents[0];
    }
    const totals = buffersOf(grads);
    const sizes = Object.fromEntries(Object.entries(grads).map(([name, t]) => [name, t.size]));
    const partial = steps > 1 ? Object.fromEntries(Object.entries(sizes).map(([name, size]) => [name, scratch.take(size * 4, name)])) : totals;
    for (let i = steps - 1; i >= 0; i--) {
      const first = i === steps - 1;
      const next = i > 0 ? (q === cotangents[0] ? cotangents[1] : cotangents[0]) : undefined;
      encodeVjp(pass, solved, states[i], q, first ? totals : partial, next);
      if (!first) for (const [name, size] of Object.entries(sizes)) encodeAxpby(pass, p, totals[name], partial[name], 1, 1, size);
      if (next) {
        encodeDamping(pass, p, next, q);
        q = next;
      }
    }
  }) as Promise<Gradients>;
  return pending.finally(() => scratch.release());
}

/**
 * The Neumann form's gradients, in one submit: h_1 = λ·gradUStar, then k − 1 damped Picard steps
 * h ← (1 − λ)h + λ(J_fᵀh + gradUStar) at uPrev (the layer adds gradUStar through gradInputAdd),
 * then the VJP at uPrev with h.
 */
function neumannGradients(p: Phantom, gradUStar: Tensor): Promise<Gradients> {
  const { solved, steps, damping } = p;
  const { layer, Qd, batch } = solved;
  const engine = layer.engine;
  const n = Qd.size;
  const point = solved.result.uPrev.buffer;
  const scratch = new Scratch(engine);
  const pending = engine.submitInto('backward', () => gradientTensors(solved), (pass, grads) => {
    const series = steps > 1 || damping < 1 ? [scratch.take(n * 4, 'Qd'), scratch.take(n * 4, 'Qd')] : [];
    // h_1 = λ·gradUStar, into a buffer of its own unless it is the only term (k = 1, λ = 1: jfb's
    // call exactly); never gradUStar itself, which the steps also read through gradInputAdd.
    let h = gradUStar.buffer;
    if (series.length > 0) {
      encodeAxpby(pass, p, series[0], h, 0, damping, n);
      h = series[0];
    }
    for (let j = 1; j < steps; j++) {
      const next = h === series[0] ? series[1] : series[0];
      layer.encodeAdjoint(pass, { input: point, Qd: Qd.buffer, gradOutput: h, gradInput: next, gradInputAdd: gradUStar.buffer, gate: engine.openGate() }, batch);
      encodeDamping(pass, p, next, h);
      h = next;
    }
    encodeVjp(pass, solved, point, h, buffersOf(grads));
  }) as Promise<Gradients>;
  return pending.finally(() => scratch.release());
}

/**
 * Solves for the fixed point and returns it with a phantom-gradient `backward` (see
 * {@link PhantomOptions}; `backwardInfo.method` is `'phantom'`). `uStar` is u_k, the last damped
 * step, for the unrolled form and f(uPrev) for the Neumann form; `uPrev` is the solve's. `backward`
 * reads nothing back (besides `checkFinite`'s check) and encodes, for the unrolled form, k − 1
 * evaluations of f and k VJPs, for the Neumann form k VJPs (k − 1 of them of the state alone);
 * its scratch buffers are given back when it resolves.
 * @throws as `jfb`, and OptionError (`'options.steps'`, `'options.damping'`, `'options.form'`:
 * checked before the solve).
 */
export async function phantom(f: ImplicitLayer, Qd: Tensor, options?: PhantomOptions): Promise<ImplicitResult> {
  const { rest } = readImplicitOptions(f, Qd, options, [...IMPLICIT_OPTION_KEYS, ...PHANTOM_KEYS]);
  const { steps: givenSteps, damping: givenDamping, form: givenForm, ...forward } = rest;
  const steps = readInteger(givenSteps, 'options.steps', 5, 1, MAX_DEPTH);
  const damping = readNumber(givenDamping, 'options.damping', 0.5, { above: 0, max: 1 });
  const form = readChoice<PhantomForm>(givenForm, 'options.form', 'unrolled', ['unrolled', 'neumann']);
  const axpby = await f.engine.kernel('accumulate', SHADERS.accumulate);
  const recomputed = await solveAndRecompute(f, Qd, { ...forward, solver: options?.solver } as ImplicitOptions, false, 'phantom');
  let solved = recomputed;
  if (form === 'unrolled') {
    try {
      solved = await unroll({ solved: recomputed, steps, damping, axpby });
    } catch (err) {
      recomputed.uStar.dispose();
      recomputed.result.dispose();
      throw err;
    }
  }
  const p: Phantom = { solved, steps, damping, axpby };
  return implicitResult(solved, async (gradUStar) => ({
    grads: await (form === 'unrolled' ? unrolledGradients(p, gradUStar) : neumannGradients(p, gradUStar)),
    info: { method: 'phantom', converged: true, fellBack: false },
  }));
}
