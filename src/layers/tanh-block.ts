/**
 * The tanh implicit block f(u, Qd) = tanh(u @ weight + Qd + bias): the original's model layer, a
 * preset of the fused sequential `linear → add(Qd) → tanh (→ dropout)` (one kernel per
 * evaluation, src/layers/dense.ts) with its parameters named `weight` and `bias`.
 */
import type { Engine } from '../engine';
import { ShapeError } from '../errors';
import { Tensor } from '../tensor';
import type { ForwardKernelChoice } from './dense';
import { checkDropout, type DropoutOptions } from './dropout';
import { Linear } from './linear';
import { checkParam, uploadAll, type ParamValue } from './params';
import { Sequential } from './sequential';
import { Qd, add } from './stages/add';
import { dropoutStage } from './stages/dropout';
import { tanh } from './stages/elementwise';
import { describe, readChoice, readEngine, readOptions } from '../validate';

export type { DropoutOptions, DropoutNoise } from './dropout';
export type { ForwardKernelChoice } from './dense';

/** Parameters of {@link implicitBlock}: tensors, or arrays to upload. */
export interface TanhBlockParams {
  /** Weight, shape [d, d], row-major (u @ weight). */
  weight: Tensor | Float32Array | number[];
  /** Bias, shape [d]. */
  bias: Tensor | Float32Array | number[];
  /**
   * Dropout on the block's output: a rate in [0, 1) (noise `'per-iteration'`), or
   * {@link DropoutOptions}. Default: none (a deterministic block).
   */
  dropout?: number | DropoutOptions;
  /**
   * Which product of the dense library (shaders/lib/gemm_*.wgsl) computes u @ weight. `'tiled'`:
   * 4 rows × 64 columns per workgroup (× 4 columns per thread with vec4 loads of the weight on a
   * GPU when d is a multiple of 4). `'split-k'`: the sum over k cut into chunks computed by
   * separate workgroups and combined by a second kernel — fills a GPU when few rows leave the
   * tiled kernel with too few workgroups. `'matmul'`: register-tiled, for many rows (on a GPU
   * 32 × 32, 64 × 64 or 128 × 128 tiles, the largest that still gives about 256 workgroups).
   * `'auto'` (default) picks split-k for few workgroups, matmul from 32 rows, tiled otherwise —
   * and always tiled on a CPU adapter (SwiftShader), which runs a workgroup on one thread, so a
   * 64 × 64 tile is one thread's work and split-k only adds a pass; there a single row takes
   * 16 columns per thread instead (one row per workgroup).
   */
  forwardKernel?: ForwardKernelChoice;
}

/** d of a weight given as a [d, d] tensor or as d² values. */
function featureSizeOf(weight: ParamValue): number {
  if (weight instanceof Tensor) {
    if (weight.shape.length !== 2 || weight.shape[0] !== weight.shape[1]) throw new ShapeError('weight', `must have shape [d, d], got [${weight.shape.join(', ')}]`);
    return weight.shape[0];
  }
  if (!(weight instanceof Float32Array) && !Array.isArray(weight)) throw new ShapeError('weight', `must be a Tensor, a Float32Array or a number[], got ${describe(weight)}`);
  const d = Math.round(Math.sqrt(weight.length));
  if (d < 1 || d * d !== weight.length) throw new ShapeError('weight', `must have d × d values, got ${weight.length}`);
  return d;
}

/**
 * `f(u, Qd) = tanh(u @ weight + Qd + bias)` for states of shape [d] or [batch, d]; with dropout,
 * `tanh(u @ weight + Qd + bias) ⊙ mask / (1 − rate)` in training mode (see {@link DropoutOptions}).
 * A {@link Sequential} of `linear(weight, bias) → add(Qd) → tanh()` (→ dropout), fused into one
 * kernel; its parameters are `weight` and `bias`. Create with {@link implicitBlock}.
 */
export class TanhBlock extends Sequential {
  declare readonly params: Readonly<{ weight: Tensor; bias: Tensor }>;
  /** The block's dropout (rate and noise mode), or null when it is deterministic. */
  readonly dropout: Readonly<Required<DropoutOptions>> | null;
  /** The forward kernel choice (see TanhBlockParams.forwardKernel). */
  readonly forwardKernel: ForwardKernelChoice;

  private constructor(engine: Engine, product: Linear, dropout: Readonly<Required<DropoutOptions>> | null, forwardKernel: ForwardKernelChoice) {
    // Salt 0: the block's masks are drawn from the solve's key itself.
    const stages = dropout === null ? [product, add(Qd), tanh()] : [product, add(Qd), tanh(), dropoutStage(dropout, 0)];
    super(engine, product.inFeatures, stages, { fuse: true, paramName: (_index, name) => name, forwardKernel });
    this.dropout = dropout;
    this.forwardKernel = forwardKernel;
  }

  /**
   * @internal Use {@link implicitBlock}. The feature size d comes from `weight` (d × d); `bias`
   * must then have d values.
   */
  static create(engine: Engine, params: TanhBlockParams): TanhBlock {
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new ShapeError('params', `must be { weight, bias }, got ${describe(params)}`);
    const p = readOptions(params, 'params', ['weight', 'bias', 'dropout', 'forwardKernel']);
    const dropout = checkDropout(p.dropout);
    if (params.weight === undefined) throw new ShapeError('weight', 'is required');
    if (params.bias === undefined) throw new ShapeError('bias', 'is required');
    const d = featureSizeOf(params.weight);
    const weight = checkParam(engine, params.weight, 'weight', [d, d]);
    const bias = checkParam(engine, params.bias, 'bias', [d]);
    const forwardKernel = readChoice<ForwardKernelChoice>(p.forwardKernel, 'forwardKernel', 'auto', ['auto', 'tiled', 'split-k', 'matmul']);
    const { tensors, owned } = uploadAll(engine, [[weight, [d, d]], [bias, [d]]]);
    return new TanhBlock(engine, new Linear(engine, tensors[0], tensors[1], owned), dropout, forwardKernel);
  }
}

/**
 * The tanh implicit block `f(u, Qd) = tanh(u @ weight + Qd + bias)`, with `weight` of shape
 * `[d, d]` (row-major) and `bias` of shape `[d]`, given as tensors (used in place) or as arrays to
 * upload. d is read from `weight`. With `dropout` the block is stochastic:
 * `f(u, Qd) = tanh(u @ weight + Qd + bias) ⊙ mask / (1 − rate)` in training mode (see
 * `DropoutOptions`). Its parameters are `f.params.weight` and `f.params.bias`; the backprop
 * gradients are named after them (`grads.weight`, `grads.bias`).
 *
 * @throws ShapeError (`'weight'`, `'bias'`), NonFiniteError (`'weight'`, `'bias'`: NaN/Infinity
 * in an array), DisposedError / EngineMismatchError (`'weight'`, `'bias'`: unusable tensors),
 * OptionError (`'params.<name>'` for an unknown key, with a did-you-mean: `{ w, b }` →
 * `'weight'`, `'bias'`; `'dropout'`, `'dropout.rate'`, `'dropout.noise'`), DeviceLostError.
 */
export function implicitBlock(engine: Engine, params: TanhBlockParams): TanhBlock {
  readEngine(engine, 'engine', 'implicitBlock');
  return TanhBlock.create(engine, params);
}
