/**
 * The tanh implicit block f(u, Qd) = tanh(u @ weight + Qd + bias): the original's model layer and
 * the first ImplicitLayer; optionally stochastic, with (inverted) dropout on its output.
 */
import type { Engine } from '../engine';
import { LimitError, ShapeError } from '../errors';
import type { Kernel } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import { Tensor } from '../tensor';
import type { AdjointIO, ForwardIO, FusedPicardPath, ImplicitLayer } from './layer';
import { checkDropout, dropoutParams, type DropoutOptions } from './dropout';
import { Lifetime, checkParam, uploadAll, type ParamValue } from './params';
import { describe, readChoice, readEngine, readOptions } from '../validate';
import { checkBatch } from './stages/workgroups';

export type { DropoutOptions, DropoutNoise } from './dropout';

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
   * Which forward kernel computes the matrix product. `'tiled'`: 4 rows × 64 columns per
   * workgroup. `'split-k'`: the sum over k cut into chunks computed by separate workgroups and
   * combined by a second kernel — fills a GPU when few rows leave the tiled kernel with too few
   * workgroups. `'matmul'`: 64 × 64 register-tiled, for many rows. `'auto'` (default) picks
   * split-k for few workgroups, matmul from 32 rows, tiled otherwise — and always tiled on a CPU
   * adapter (SwiftShader), which runs a workgroup on one thread: there a 64 × 64 matmul tile is
   * one thread's work and split-k only adds a pass (measured ≈ 2× slower at d = 64, 64 rows).
   */
  forwardKernel?: ForwardKernelChoice;
}

/** See {@link TanhBlockParams.forwardKernel}. */
export type ForwardKernelChoice = 'auto' | 'tiled' | 'split-k' | 'matmul';

/** Largest state (batch × d) the fused Picard kernel holds in one workgroup. */
const FUSED_MAX_STATE = 1024;
/** Largest (values per thread) × d the fused Picard kernel takes on (see fusedPicard). */
const FUSED_MAX_THREAD_WORK = 256;

/** From this many rows `'auto'` uses the register-tiled matmul. */
const MATMUL_FROM_ROWS = 32;

/** The tiled kernel is used alone once it has this many workgroups. */
const SPLIT_BELOW_GROUPS = 128;
/** Split-k aims at about this many workgroups in its first pass. */
const SPLIT_TARGET_GROUPS = 512;
/** Smallest chunk of k per workgroup. */
const MIN_CHUNK = 32;

const ROWS_PER_GROUP = 4;
const COLS_PER_GROUP = 64;

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
 * Create with {@link implicitBlock}.
 */
export class TanhBlock implements ImplicitLayer {
  readonly featureSize: number;
  readonly params: Readonly<{ weight: Tensor; bias: Tensor }>;
  /** The block's dropout (rate and noise mode), or null when it is deterministic. */
  readonly dropout: Readonly<Required<DropoutOptions>> | null;
  /** Dropout members of the kernels' params, fixed per block (so uniform buffers are shared across solves). */
  private readonly dropoutUniforms: Record<string, number>;
  /** The forward kernel choice (see TanhBlockParams.forwardKernel). */
  readonly forwardKernel: ForwardKernelChoice;
  private kernels?: { forward: Kernel; matmul: Kernel; deltaMatmul: Kernel; partial: Kernel; combine: Kernel; delta: Kernel; paramGrads: Kernel; inputGrad: Kernel };
  /** Split-k partial sums per batch size. */
  private readonly partials = new Map<number, GPUBuffer>();
  /** δ = ḡ ⊙ (1 − y²) scratch per batch size, for adjoints that do not ask for ∂Qd. */
  private readonly deltas = new Map<number, GPUBuffer>();
  private readonly lifetime: Lifetime;

  private constructor(
    readonly engine: Engine,
    weight: Tensor,
    bias: Tensor,
    dropout: Readonly<Required<DropoutOptions>> | null,
    forwardKernel: ForwardKernelChoice,
    owned: Tensor[],
  ) {
    this.lifetime = new Lifetime(owned, 'tanh block');
    this.featureSize = bias.size;
    this.forwardKernel = forwardKernel;
    this.params = Object.freeze({ weight, bias });
    this.dropout = dropout;
    this.dropoutUniforms = dropoutParams(dropout);
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
    return new TanhBlock(engine, tensors[0], tensors[1], dropout, forwardKernel, owned);
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.lifetime.disposed;
  }

  /**
   * Frees the block's GPU memory: its scratch buffers, and `weight` and `bias` when the block uploaded
   * them from arrays (tensors passed in stay the caller's). Using the block afterwards throws
   * DisposedError (`'f'`). Safe to call twice.
   */
  dispose(): void {
    if (!this.lifetime.end()) return;
    for (const buffer of [...this.partials.values(), ...this.deltas.values()]) this.engine.releaseBuffer(buffer);
    this.partials.clear();
    this.deltas.clear();
  }

  /**
   * Compiles the forward and adjoint kernels; throws ShapeError (`'batch'`) unless `batch` is a
   * positive integer, LimitError (`'Qd'`) when `batch` rows need more workgroups than the device
   * allows.
   */
  async prepare(batch: number): Promise<void> {
    this.lifetime.assertLive('f');
    checkBatch(batch);
    const groups = Math.ceil(batch / ROWS_PER_GROUP);
    const limit = this.engine.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups > limit) {
      throw new LimitError('Qd', `${batch} rows need ${groups} workgroups in one dimension; this device allows ${limit} (at most ${limit * ROWS_PER_GROUP} rows)`);
    }
    const { engine } = this;
    this.kernels ??= {
      forward: await engine.kernel('blockForward', SHADERS.blockForward),
      matmul: await engine.kernel('blockForwardMm', SHADERS.blockForwardMm),
      deltaMatmul: await engine.kernel('blockDeltaMm', SHADERS.blockDeltaMm),
      partial: await engine.kernel('blockPartial', SHADERS.blockPartial),
      combine: await engine.kernel('blockCombine', SHADERS.blockCombine),
      delta: await engine.kernel('blockDelta', SHADERS.blockDelta),
      paramGrads: await engine.kernel('blockParamGrads', SHADERS.blockParamGrads),
      inputGrad: await engine.kernel('blockInputGrad', SHADERS.blockInputGrad),
    };
    // Disposed while the kernels compiled: allocate nothing.
    this.lifetime.assertLive('f');
    if (!this.deltas.has(batch)) this.deltas.set(batch, engine.allocate(batch * this.featureSize * 4, 'Qd'));
    const splits = this.splits(batch);
    if (splits > 1 && !this.partials.has(batch)) {
      this.partials.set(batch, engine.allocate(splits * batch * this.featureSize * 4, 'Qd'));
    }
  }

  /**
   * @internal What the fused Picard kernel (shaders/picard_fused.wgsl) needs, when it pays: a
   * deterministic block whose state fits one workgroup and whose serial work per thread
   * (values per thread × d) stays within FUSED_MAX_THREAD_WORK. Measured on an H100: d = 32 →
   * 7× faster than a kernel per step, d = 256 × 1 row 1.75×, but d = 256 × 4 rows 2× slower and
   * d = 1024 15× slower (one workgroup walking the weight serially is latency-bound).
   */
  fusedPicard(batch: number): FusedPicardPath | null {
    this.lifetime.assertLive('f');
    const n = batch * this.featureSize;
    if (this.dropout !== null || n > FUSED_MAX_STATE) return null;
    if (Math.ceil(n / 256) * this.featureSize > FUSED_MAX_THREAD_WORK) return null;
    return { kind: 'tanh-block', weight: this.params.weight.buffer, bias: this.params.bias.buffer };
  }

  /** Whether the register-tiled 64 × 64 kernels compute the product for `batch` rows. */
  private usesMatmul(batch: number): boolean {
    return this.kernelChoice === 'matmul' || (this.kernelChoice === 'auto' && batch >= MATMUL_FROM_ROWS);
  }

  /** The forward kernel choice with 'auto' resolved to 'tiled' on a CPU adapter. */
  private get kernelChoice(): ForwardKernelChoice {
    return this.forwardKernel === 'auto' && this.engine.cpuAdapter ? 'tiled' : this.forwardKernel;
  }

  /** Chunks of k of the split-k forward for `batch` rows (1 = the tiled kernel alone). */
  private splits(batch: number): number {
    const d = this.featureSize;
    const choice = this.kernelChoice;
    if (choice === 'tiled' || choice === 'matmul') return 1;
    const groups = Math.ceil(d / COLS_PER_GROUP) * Math.ceil(batch / ROWS_PER_GROUP);
    const most = Math.max(1, Math.floor(d / MIN_CHUNK));
    if (choice === 'auto' && (groups >= SPLIT_BELOW_GROUPS || most < 2)) return 1;
    // Equal chunks: the count is ceil(d / chunk), which may be below the wished-for number.
    const wished = Math.min(most, Math.max(2, Math.ceil(SPLIT_TARGET_GROUPS / groups)));
    return Math.ceil(d / Math.ceil(d / wished));
  }

  private prepared(batch: number): { kernels: NonNullable<TanhBlock['kernels']>; delta: GPUBuffer } {
    this.lifetime.assertLive('f');
    const delta = this.deltas.get(batch);
    if (!this.kernels || !delta) throw new Error(`TanhBlock.prepare(${batch}) must run before encoding`);
    return { kernels: this.kernels, delta };
  }

  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    const { forward, matmul, partial, combine } = this.prepared(batch).kernels;
    const d = this.featureSize;
    const { weight: w, bias: b } = this.params;
    const splits = this.splits(batch);
    const partialSums = this.partials.get(batch);
    if (splits > 1 && partialSums) {
      const chunk = Math.ceil(d / splits);
      const sums = partial.bind({
        gate: io.gate, params: this.engine.params(partial, { d, batch, chunk }), u: io.input, w: w.buffer, partial: partialSums,
      });
      partial.dispatch(pass, sums, Math.ceil(d / COLS_PER_GROUP), Math.ceil(batch / ROWS_PER_GROUP), splits);
      const params = this.engine.params(combine, { d, batch, splits, ...this.dropoutUniforms });
      const out = combine.bind({ gate: io.gate, params, partial: partialSums, qd: io.Qd, b: b.buffer, out: io.output });
      combine.dispatch(pass, out, Math.ceil((batch * d) / 256));
      return;
    }
    const useMatmul = this.usesMatmul(batch);
    const kernel = useMatmul ? matmul : forward;
    const group = kernel.bind({
      gate: io.gate,
      params: this.engine.params(kernel, { d, batch, ...this.dropoutUniforms }),
      u: io.input,
      qd: io.Qd,
      w: w.buffer,
      b: b.buffer,
      out: io.output,
    });
    if (useMatmul) kernel.dispatch(pass, group, Math.ceil(d / 64), Math.ceil(batch / 64));
    else kernel.dispatch(pass, group, Math.ceil(d / COLS_PER_GROUP), Math.ceil(batch / ROWS_PER_GROUP));
  }

  /**
   * δ = ḡ ⊙ (1 − y²) (= ∂Qd), then ∂weight = uᵀδ, ∂bias = Σ_rows δ and ∂u = δ weightᵀ as asked. With dropout
   * in training mode δ also carries the factor mask / (1 − rate) of the forward evaluation that
   * `io.gate` names (same key, evaluation index and mode give the same mask).
   */
  encodeAdjoint(pass: GPUComputePassEncoder, io: AdjointIO, batch: number): void {
    const { kernels, delta: scratch } = this.prepared(batch);
    const d = this.featureSize;
    const { weight: w, bias: b } = this.params;
    const sizes = { d, batch };
    const delta = io.gradQd ?? scratch;
    const useMatmul = this.usesMatmul(batch);
    const deltaKernel = useMatmul ? kernels.deltaMatmul : kernels.delta;
    const deltaGroup = deltaKernel.bind({
      gate: io.gate, params: this.engine.params(deltaKernel, { ...sizes, ...this.dropoutUniforms }), u: io.input, qd: io.Qd,
      w: w.buffer, b: b.buffer, g_out: io.gradOutput, delta,
    });
    if (useMatmul) deltaKernel.dispatch(pass, deltaGroup, Math.ceil(d / 64), Math.ceil(batch / 64));
    else deltaKernel.dispatch(pass, deltaGroup, Math.ceil(d / COLS_PER_GROUP), Math.ceil(batch / ROWS_PER_GROUP));
    if (io.gradParams) {
      const { weight: dw, bias: db } = io.gradParams;
      if (!dw || !db) throw new Error('TanhBlock adjoint needs gradParams.weight and gradParams.bias together');
      const group = kernels.paramGrads.bind({
        gate: io.gate, params: this.engine.params(kernels.paramGrads, sizes), u: io.input, delta, dw, db,
      });
      kernels.paramGrads.dispatch(pass, group, Math.ceil(d / 64), d);
    }
    if (io.gradInput) {
      const params = this.engine.params(kernels.inputGrad, { d, batch, use_add: io.gradInputAdd ? 1 : 0 });
      const group = kernels.inputGrad.bind({
        gate: io.gate, params, delta, w: w.buffer, add: io.gradInputAdd ?? delta, du: io.gradInput,
      });
      kernels.inputGrad.dispatch(pass, group, Math.ceil(d / 16), Math.ceil(batch / 16));
    }
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
