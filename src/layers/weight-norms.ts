/**
 * Weight reparametrisations of a linear or conv2d weight, for training stable DEQs: weight
 * normalisation (Salimans & Kingma) and spectral normalisation (Miyato et al.; TorchDEQ's
 * `norm/`). A wrapper owns the trainable tensors (`params`), recomputes the layer's weight from
 * them on the GPU (`encodeUpdate` / `update`) and maps the weight's gradient to theirs
 * (`encodeBackward` / `backward`). Nothing is read back (shaders/weight_norm.wgsl,
 * shaders/spectral_norm.wgsl).
 *
 * The weight is seen as a rows × cols row-major matrix whose columns are the output features:
 * linear's [in, out] as is, conv2d's [3, 3, in, out] as [9·in, out].
 */
import type { Engine } from '../engine';
import { DisposedError, OptionError, ShapeError } from '../errors';
import type { BufferRegion } from '../gpu/kernel';
import { KernelSet, type KernelSpec } from '../gpu/kernel-set';
import { Tensor } from '../tensor';
import { readBoolean, readEncoder, readInteger, readNumber, readOptions, readRegion, readTensor, describe, F32_MAX } from '../validate';
import { Linear } from './linear';
import { Lifetime } from './params';
import { Sequential } from './sequential';
import { Conv2d } from './stages/conv2d';
import { VectorOps, gridKernel, gridProblem, type GridProblem } from './stages/common';

/** What a wrapper can reparametrise: a linear or conv2d layer, or a sequential layer (the tanh block included) holding one. */
export type NormalizableLayer = Linear | Conv2d | Sequential;

/** Options of {@link weightNorm}. */
export interface WeightNormOptions {
  /**
   * Which weight of a sequential layer: the name in `layer.params` of a linear or conv2d stage's
   * weight (e.g. `'0.weight'`). Default `'weight'` (the tanh block's, a linear's or a conv2d's).
   */
  param?: string;
}

/** Options of {@link spectralNorm}. */
export interface SpectralNormOptions {
  /** As {@link WeightNormOptions.param}. */
  param?: string;
  /** Power iterations per training-mode update, an integer in [1, 1024]. Default 1. */
  iterations?: number;
  /**
   * Power iterations run when the wrapper is created (the vectors start random), an integer in
   * [0, 4096]. Default 15. With 0, σ (and so the weight) is 0 until the first training-mode
   * update, unless `state` is loaded first (resuming a saved model).
   */
  initialIterations?: number;
  /**
   * Learn a per-output-feature scale `g` (TorchDEQ's `learn_scale`): weight = g ⊙ v / σ, with g
   * a trainable `[outFeatures]` tensor starting at `targetNorm`. Default false: weight =
   * targetNorm · v / σ.
   */
  learnScale?: boolean;
  /** The spectral norm the weight is scaled to (or the learned scale's start), > 0. Default 1. */
  targetNorm?: number;
  /** Seed of the power iteration's random start vector, a u32. Default 0. */
  seed?: number;
}

/** Options of `update` / `encodeUpdate`. */
export interface NormUpdateOptions {
  /**
   * Inference mode: recompute the weight from the current parameters without advancing the
   * spectral norm's power iteration (its vectors stay as they are). Default false (training).
   */
  inference?: boolean;
}

/**
 * Where `encodeBackward` writes the gradients of the wrapper's parameters (overwritten, not
 * accumulated into). `v` is required; `g` is optional (spectral norm: only with `learnScale`).
 */
export interface NormGradBuffers {
  /** ∂v, the weight's shape. */
  v: BufferRegion | Tensor;
  /** ∂g, [outFeatures]. */
  g?: BufferRegion | Tensor;
}

/** Gradients returned by `backward`, named after the parameters. */
export interface NormGradients {
  v: Tensor;
  /** Weight norm, and spectral norm with `learnScale`. */
  g?: Tensor;
}

/** The weight a wrapper rewrites, as a rows × cols matrix. */
interface Target {
  engine: Engine;
  weight: Tensor;
  rows: number;
  cols: number;
}

/** Weights that have a wrapper, so a second one is refused (two would overwrite each other). */
const wrapped = new WeakMap<Tensor, string>();

/** The weight of `layer` that `param` names, checked to be a linear's or a conv2d's. */
function resolveTarget(layer: unknown, param: unknown, what: string): Target {
  if (param !== undefined && typeof param !== 'string') throw new OptionError('options.param', `must be a string, got ${describe(param)}`);
  const name = param ?? 'weight';
  let weight: Tensor | undefined;
  if (layer instanceof Linear || layer instanceof Conv2d) {
    if (name !== 'weight') throw new OptionError('options.param', `a ${layer.kind} layer has one weight, 'weight'; got '${name}'`);
    if (layer.disposed) throw new DisposedError('layer', `the ${layer.kind} layer was disposed`);
    weight = layer.params.weight;
  } else if (layer instanceof Sequential) {
    if (layer.disposed) throw new DisposedError('layer', 'the sequential layer was disposed');
    const tensor: Tensor | undefined = Object.hasOwn(layer.params, name) ? layer.params[name] : undefined;
    const stage = layer.stages.find((s) => (s.kind === 'linear' || s.kind === 'conv2d') && s.params.weight === tensor);
    if (!tensor || !stage) {
      const weights = Object.keys(layer.params).filter((k) => layer.stages.some((s) => (s.kind === 'linear' || s.kind === 'conv2d') && s.params.weight === layer.params[k]));
      throw new OptionError('options.param', `'${name}' is not the weight of a linear or conv2d stage of this layer (its weights: ${weights.join(', ') || 'none'})`);
    }
    weight = tensor;
  } else {
    throw new OptionError('layer', `${what} takes a linear, conv2d, implicitBlock or sequential layer, got ${describe(layer)}`);
  }
  const engine = weight.engine;
  weight.assertUsable(engine, 'layer');
  engine.assertAlive(what);
  const shape = weight.shape;
  const [rows, cols] = shape.length === 2 ? [shape[0], shape[1]] : [shape[0] * shape[1] * shape[2], shape[3]];
  const other = wrapped.get(weight);
  if (other !== undefined) throw new OptionError('layer', `its weight '${name}' already has a ${other} wrapper (dispose it first)`);
  return { engine, weight, rows, cols };
}

/** A grid-stride kernel's problem: one workgroup per 256 columns (weight norm) or values. */
type Problem = GridProblem;
const single: (shader: KernelSpec<Problem>['shader'], entry: string) => KernelSpec<Problem> = (shader, entry) => ({ shader, entry, groups: () => [1] });

/** The kernels of each wrapper, by name (named types, so the published declarations need no spec). */
type WeightNormKernel = 'forward' | 'backward' | 'init';
type SpectralNormKernel = 'power' | 'scale' | 'gradDot' | 'gradV';

const WEIGHT_NORM_SPECS: Record<WeightNormKernel, KernelSpec<Problem>> = {
  forward: gridKernel('weightNorm', 'forward_main'),
  backward: gridKernel('weightNorm', 'backward_main'),
  init: gridKernel('weightNorm', 'init_main'),
};

const SPECTRAL_NORM_SPECS: Record<SpectralNormKernel, KernelSpec<Problem>> = {
  power: single('spectralNorm', 'power_main'),
  scale: gridKernel('spectralNorm', 'scale_main'),
  gradDot: single('spectralNorm', 'grad_dot_main'),
  gradV: gridKernel('spectralNorm', 'grad_v_main'),
};

/**
 * What both wrappers share: the target weight, the owned tensors, the scratch sink, kernel
 * compilation, argument checks and the one-submit `update` / `backward` conveniences.
 */
abstract class WeightReparametrization<Names extends string> {
  /** The engine of the layer's weight. */
  readonly engine: Engine;
  /** The layer's weight, which `update` overwrites (the effective weight the layer computes with). */
  readonly weight: Tensor;
  /** Rows of the weight seen as a matrix (linear: inFeatures; conv2d: 9 · inChannels). */
  readonly rows: number;
  /** Columns: the output features. */
  readonly cols: number;
  /** The trainable tensors: train these (not `weight`) with an optimizer. */
  abstract readonly params: Readonly<Record<string, Tensor>>;
  /** @internal */
  protected readonly set: KernelSet<Problem, Names>;
  /** @internal A never-read target for gradients not asked for ([cols]). */
  protected readonly sink: GPUBuffer;
  private readonly lifetime: Lifetime;

  /** @internal */
  protected constructor(target: Target, readonly kind: string, specs: Readonly<Record<Names, KernelSpec<Problem>>>, owned: Tensor[]) {
    this.engine = target.engine;
    this.weight = target.weight;
    this.rows = target.rows;
    this.cols = target.cols;
    this.lifetime = new Lifetime(owned, `${kind} wrapper`);
    this.set = new KernelSet(this.engine, kind, specs);
    this.sink = this.engine.allocate(this.cols * 4, 'layer');
    wrapped.set(this.weight, kind);
  }

  /** @internal Compiles the kernels and copies the layer's weight into `v` (one submit, no readback). */
  protected async initialise(v: Tensor, encode: (pass: GPUComputePassEncoder) => void): Promise<void> {
    const vector = await VectorOps.create(this.engine);
    await this.set.prepare();
    await this.engine.submitPass(`${this.kind}.init`, (pass) => {
      vector.copy(pass, this.engine.openGate(), this.weight.buffer, v.buffer, this.weight.size, false);
      encode(pass);
    });
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.lifetime.disposed;
  }

  /** @internal Throws unless the wrapper and the layer's weight can be used. */
  protected assertUsable(): void {
    this.lifetime.assertLive(this.kind);
    this.weight.assertUsable(this.engine, 'layer');
    for (const [name, tensor] of Object.entries(this.params)) tensor.assertUsable(this.engine, `params.${name}`);
  }

  /** @internal The problem of a grid-stride kernel over n items. */
  protected grid(n: number): Problem {
    return gridProblem(this.engine, n);
  }

  /** @internal The uniform values of the kernels. */
  protected abstract uniforms(inference: boolean): Record<string, number>;

  /**
   * Encodes the recomputation of the layer's weight from the parameters into a pass the caller
   * owns. Call it once per training step before the forward solve, after the optimizer step that
   * changed the parameters (and with `{ inference: true }` before inference after training), so
   * that every solve and backward sees the current weight.
   * @throws OptionError (`'options'`, `'options.inference'`), DisposedError (the wrapper's kind,
   * `'layer'`, `'params.<name>'`), DeviceLostError.
   */
  encodeUpdate(pass: GPUComputePassEncoder, options?: NormUpdateOptions): void {
    const inference = readBoolean(readOptions(options, 'options', ['inference']).inference, 'options.inference', false);
    readEncoder(pass, 'pass');
    this.engine.assertAlive(`${this.kind}.update`);
    this.assertUsable();
    this.encodeWeight(pass, inference);
  }

  /** @internal Encodes the weight's recomputation (checked). */
  protected abstract encodeWeight(pass: GPUComputePassEncoder, inference: boolean): void;

  /**
   * Encodes the gradients of the parameters from `gradWeight`, the gradient of the layer's weight
   * (what the layer's backward produced), into a pass the caller owns: ∂v into `grads.v`, ∂g
   * into `grads.g` when given. Uses the state of the latest update (the weight the forward used).
   * @throws ShapeError / DisposedError / EngineMismatchError (`'gradWeight'`, `'grads.v'`,
   * `'grads.g'`), OptionError (`'grads'`, `'grads.<name>'`), DeviceLostError.
   */
  encodeBackward(pass: GPUComputePassEncoder, gradWeight: BufferRegion | Tensor, grads: NormGradBuffers): void {
    readEncoder(pass, 'pass');
    this.engine.assertAlive(`${this.kind}.backward`);
    this.assertUsable();
    const g = readOptions(grads ?? null, 'grads', this.gradNames());
    if (g.v === undefined) throw new ShapeError('grads.v', 'is required');
    const check = (value: unknown, name: string, shape: readonly number[]): BufferRegion => {
      if (value instanceof Tensor && value.shape.join() !== shape.join()) {
        throw new ShapeError(name, `must have shape [${shape.join(', ')}], got [${value.shape.join(', ')}]`);
      }
      return readRegion(value, name, this.engine);
    };
    const dW = check(gradWeight, 'gradWeight', this.weight.shape);
    const dv = check(g.v, 'grads.v', this.weight.shape);
    const dg = g.g === undefined ? undefined : check(g.g, 'grads.g', [this.cols]);
    const buffers = [dW, dv, dg].map((r) => (r === undefined ? undefined : 'buffer' in r ? r.buffer : r));
    if (buffers[0] === buffers[1]) throw new ShapeError('grads.v', 'must be another buffer than gradWeight');
    if (buffers[2] !== undefined && (buffers[2] === buffers[0] || buffers[2] === buffers[1])) throw new ShapeError('grads.g', 'must be another buffer than gradWeight and grads.v');
    this.encodeGradients(pass, dW, dv, dg);
  }

  /** @internal The keys `grads` may have. */
  protected abstract gradNames(): string[];

  /** @internal Encodes the gradients (checked). */
  protected abstract encodeGradients(pass: GPUComputePassEncoder, dW: BufferRegion, dv: BufferRegion, dg: BufferRegion | undefined): void;

  /**
   * `encodeUpdate` in a submit of its own (no readback).
   * @throws as encodeUpdate.
   */
  async update(options?: NormUpdateOptions): Promise<void> {
    await this.engine.settleWraps();
    await this.engine.submitPass(`${this.kind}.update`, (pass) => this.encodeUpdate(pass, options));
  }

  /**
   * The gradients of the parameters from `gradWeight` (the weight's gradient) as new tensors, in
   * one submit with no readback.
   * @throws as encodeBackward.
   */
  async backward(gradWeight: Tensor): Promise<NormGradients> {
    await this.engine.settleWraps();
    readTensor(gradWeight, 'gradWeight', this.engine);
    const withG = this.gradNames().includes('g');
    const make = (shape: readonly number[]): Tensor => new Tensor(this.engine, this.engine.allocate(shape.reduce((a, b) => a * b, 1) * 4, 'gradWeight'), shape, true);
    const out = await this.engine.submitInto(`${this.kind}.backward`, () => ({ v: make(this.weight.shape), g: withG ? make([this.cols]) : undefined }), (pass, o) => {
      this.encodeBackward(pass, gradWeight, o.g === undefined ? { v: o.v } : { v: o.v, g: o.g });
    });
    return out.g === undefined ? { v: out.v } : { v: out.v, g: out.g };
  }

  /**
   * Frees the wrapper's tensors (params and state) and scratch; the layer and its weight (with
   * the last value written) stay. Safe to call twice.
   */
  dispose(): void {
    if (!this.lifetime.end()) return;
    this.set.dispose();
    this.engine.releaseBuffer(this.sink);
    if (wrapped.get(this.weight) === this.kind) wrapped.delete(this.weight);
  }
}

/**
 * Weight normalisation of a layer weight (see {@link weightNorm}): `weight[:, c] = g[c] · v[:, c] / ‖v[:, c]‖`
 * per output feature c, with trainable `v` (the weight's shape) and `g` ([outFeatures]).
 */
export class WeightNorm extends WeightReparametrization<WeightNormKernel> {
  /** v (the weight's shape, starting at the layer's weight) and g ([outFeatures], starting at v's column norms). */
  readonly params: Readonly<{ v: Tensor; g: Tensor }>;

  /** @internal Use {@link weightNorm}. */
  constructor(target: Target, v: Tensor, g: Tensor) {
    super(target, 'weightNorm', WEIGHT_NORM_SPECS, [v, g]);
    this.params = Object.freeze({ v, g });
  }

  /** @internal */
  async init(): Promise<void> {
    await this.initialise(this.params.v, (pass) => {
      this.set.dispatch(pass, 'init', this.grid(this.cols), { v: this.params.v.buffer, g_out: this.params.g.buffer }, this.uniforms());
    });
  }

  protected uniforms(): Record<string, number> {
    return { rows: this.rows, cols: this.cols };
  }

  protected encodeWeight(pass: GPUComputePassEncoder): void {
    const { v, g } = this.params;
    this.set.dispatch(pass, 'forward', this.grid(this.cols), { v: v.buffer, g: g.buffer, w: this.weight.buffer }, this.uniforms());
  }

  protected gradNames(): string[] {
    return ['v', 'g'];
  }

  protected encodeGradients(pass: GPUComputePassEncoder, dW: BufferRegion, dv: BufferRegion, dg: BufferRegion | undefined): void {
    const { v, g } = this.params;
    this.set.dispatch(pass, 'backward', this.grid(this.cols), { v: v.buffer, g: g.buffer, grad_w: dW, grad_v: dv, grad_g: dg ?? this.sink }, this.uniforms());
  }
}

/** A start vector in [−1, 1) from a small LCG (the same seed gives the same vector). */
function startVector(n: number, seed: number): Float32Array {
  let state = (seed ^ 0x85ebca6b) >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/**
 * Spectral normalisation of a layer weight (see {@link spectralNorm}): `weight = g ⊙ v / σ(v)`,
 * σ estimated by power iteration with persistent vectors kept on the GPU (`state`), g the target
 * norm or a learned per-output-feature scale.
 */
export class SpectralNorm extends WeightReparametrization<SpectralNormKernel> {
  /** v (the weight's shape, starting at the layer's weight), and g ([outFeatures]) with `learnScale`. */
  readonly params: Readonly<{ v: Tensor; g?: Tensor }>;
  /**
   * The power iteration's state: unit vectors `left` [rows] and `right` [outFeatures] (estimates
   * of the top singular vectors of v seen as a matrix) and `sigma` [1], the estimate σ =
   * leftᵀ·v·right the weight was last divided by. Save and load them with the parameters to
   * resume training; then `update({ inference: true })` recomputes the weight.
   */
  readonly state: Readonly<{ left: Tensor; right: Tensor; sigma: Tensor }>;
  /** Power iterations per training-mode update. */
  readonly iterations: number;
  /** Whether the per-feature scale g is learned. */
  readonly learnScale: boolean;
  /** The target norm (the learned scale's start). */
  readonly targetNorm: number;
  private readonly scale: Tensor;
  private readonly dots: GPUBuffer;

  /** @internal Use {@link spectralNorm}. */
  constructor(target: Target, options: { iterations: number; learnScale: boolean; targetNorm: number; seed: number }) {
    const { engine, rows, cols } = target;
    const v = engine.zeros([...target.weight.shape]);
    const scale = engine.tensor(new Float32Array(cols).fill(options.targetNorm), [cols]);
    const left = engine.zeros([rows]);
    const right = engine.tensor(startVector(cols, options.seed), [cols]);
    const sigma = engine.zeros([1]);
    super(target, 'spectralNorm', SPECTRAL_NORM_SPECS, [v, scale, left, right, sigma]);
    this.params = Object.freeze(options.learnScale ? { v, g: scale } : { v });
    this.state = Object.freeze({ left, right, sigma });
    this.scale = scale;
    this.iterations = options.iterations;
    this.learnScale = options.learnScale;
    this.targetNorm = options.targetNorm;
    this.dots = engine.allocate(16, 'layer');
  }

  /** @internal */
  async init(initialIterations: number): Promise<void> {
    await this.initialise(this.params.v, (pass) => this.encodeWeightWith(pass, initialIterations));
  }

  protected uniforms(inference: boolean, iterations = inference ? 0 : this.iterations): Record<string, number> {
    return { rows: this.rows, cols: this.cols, iterations };
  }

  private encodeWeightWith(pass: GPUComputePassEncoder, iterations: number): void {
    const { left, right, sigma } = this.state;
    const v = this.params.v.buffer;
    const uniforms = this.uniforms(false, iterations);
    this.set.dispatch(pass, 'power', this.grid(1), { v, left: left.buffer, right: right.buffer, sigma: sigma.buffer }, uniforms);
    this.set.dispatch(pass, 'scale', this.grid(this.rows * this.cols), { v, sigma: sigma.buffer, g: this.scale.buffer, w: this.weight.buffer }, uniforms);
  }

  protected encodeWeight(pass: GPUComputePassEncoder, inference: boolean): void {
    this.encodeWeightWith(pass, inference ? 0 : this.iterations);
  }

  protected gradNames(): string[] {
    return this.learnScale ? ['v', 'g'] : ['v'];
  }

  protected encodeGradients(pass: GPUComputePassEncoder, dW: BufferRegion, dv: BufferRegion, dg: BufferRegion | undefined): void {
    const { left, right, sigma } = this.state;
    const v = this.params.v.buffer;
    const uniforms = this.uniforms(true);
    const g = this.scale.buffer;
    this.set.dispatch(pass, 'gradDot', this.grid(1), { v, sigma: sigma.buffer, g, grad_w: dW, grad_g: dg ?? this.sink, dots: this.dots }, uniforms);
    this.set.dispatch(pass, 'gradV', this.grid(this.rows * this.cols), {
      sigma: sigma.buffer, dots: this.dots, grad_w: dW, g, left: left.buffer, right: right.buffer, grad_v: dv,
    }, uniforms);
  }

  override dispose(): void {
    if (this.disposed) return;
    super.dispose();
    this.engine.releaseBuffer(this.dots);
  }
}

/**
 * Weight normalisation (Salimans & Kingma) of a layer's weight: `weight[:, c] = g[c] · v[:, c] /
 * ‖v[:, c]‖` for every output feature c (a linear's output column; a conv2d's output channel,
 * over its 3·3·inChannels taps). The wrapper's `params` `{ v, g }` are what an optimizer trains
 * (v starts at the layer's weight, g at its column norms, so the weight is unchanged at first);
 * the layer's own `weight` becomes derived, rewritten by `update`:
 *
 * ```ts
 * const wn = await weightNorm(f);               // f: implicitBlock, linear, conv2d, sequential
 * const opt = adam(engine, [wn.params.v, wn.params.g, f.params.bias]);
 * await wn.update();                            // weight from (v, g), before the solve
 * const grads = await (await jfb(f, Qd)).backward(dLoss);
 * const { v, g } = await wn.backward(grads.weight);
 * await opt.step([v, g, grads.bias]);
 * ```
 *
 * Gradients (per column, ŵ = v / ‖v‖): ∂g = ŵ · ∂weight, ∂v = (g / ‖v‖)(∂weight − ŵ (ŵ · ∂weight)).
 * A zero column of v gives a zero weight column and zero gradients.
 *
 * @throws OptionError (`'layer'`: not a linear, conv2d or sequential layer, or its weight already
 * wrapped; `'options'`, `'options.param'`), DisposedError (`'layer'`), DeviceLostError.
 */
export async function weightNorm(layer: NormalizableLayer, options?: WeightNormOptions): Promise<WeightNorm> {
  const o = readOptions(options, 'options', ['param']);
  const target = resolveTarget(layer, o.param, 'weightNorm');
  const { engine, weight, cols } = target;
  const v = engine.zeros([...weight.shape]);
  const g = engine.zeros([cols]);
  const wrapper = new WeightNorm(target, v, g);
  try {
    await wrapper.init();
  } catch (err) {
    wrapper.dispose();
    throw err;
  }
  return wrapper;
}

/**
 * Spectral normalisation (Miyato et al.) of a layer's weight: `weight = targetNorm · v / σ(v)`
 * (or `g ⊙ v / σ(v)` with a learned per-output-feature scale, `learnScale`, as TorchDEQ's
 * `learn_scale`), where σ(v) is the largest singular value of v seen as a rows × outFeatures
 * matrix (a conv2d's [3, 3, in, out] kernel as [9·in, out], as PyTorch and TorchDEQ reshape it),
 * estimated by power iteration with persistent vectors kept on the GPU (`state`): `iterations`
 * steps per training-mode `update` (default 1), none with `{ inference: true }`.
 * `initialIterations` steps run at creation from a random start. v starts at the layer's weight,
 * so the weight is normalised from the creation on.
 *
 * Gradients hold the power-iteration vectors constant (as PyTorch and TorchDEQ do): with σ =
 * leftᵀ·v·right and D = Σ ∂weight ⊙ g ⊙ v, ∂v = (g ⊙ ∂weight − (D / σ)·left·rightᵀ) / σ and
 * ∂g[c] = Σ_i ∂weight[i, c]·v[i, c] / σ. Use it as {@link weightNorm} (`params`, `update`,
 * `backward`).
 *
 * @throws OptionError (`'layer'`, `'options'`, `'options.param'`, `'options.iterations'`,
 * `'options.initialIterations'`, `'options.learnScale'`, `'options.targetNorm'`,
 * `'options.seed'`), DisposedError (`'layer'`), DeviceLostError.
 */
export async function spectralNorm(layer: NormalizableLayer, options?: SpectralNormOptions): Promise<SpectralNorm> {
  const o = readOptions(options, 'options', ['param', 'iterations', 'initialIterations', 'learnScale', 'targetNorm', 'seed']);
  const config = {
    iterations: readInteger(o.iterations, 'options.iterations', 1, 1, 1024),
    learnScale: readBoolean(o.learnScale, 'options.learnScale', false),
    targetNorm: readNumber(o.targetNorm, 'options.targetNorm', 1, { above: 0, max: F32_MAX }),
    seed: readInteger(o.seed, 'options.seed', 0, 0, 0xffffffff),
  };
  const initialIterations = readInteger(o.initialIterations, 'options.initialIterations', 15, 0, 4096);
  const target = resolveTarget(layer, o.param, 'spectralNorm');
  const wrapper = new SpectralNorm(target, config);
  try {
    await wrapper.init(initialIterations);
  } catch (err) {
    wrapper.dispose();
    throw err;
  }
  return wrapper;
}
