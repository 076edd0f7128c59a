/**
 * A dense (affine) layer `y = x·weight + bias` with its adjoints, for the explicit parts of a model around
 * an implicit block (input projection, classifier head). Encoders write into a pass the caller
 * owns, like the implicit layers, so a training step can put everything into one submit.
 */
import type { Engine } from '../engine';
import { LimitError, NonFiniteError, ShapeError } from '../errors';
import type { BufferRegion } from '../gpu/kernel';
import { DenseKernels, NO_EPILOGUE, type Epilogue, type ForwardKernelChoice } from './dense';
import type { FusedPicardPath } from './layer';
import { Tensor } from '../tensor';
import { Lifetime, readParam, uploadAll } from './params';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from './stage';
import { checkBatch } from './stages/workgroups';
import { describe, readBoolean, readEncoder, readEngine, readOptions, readRegion, readTensor } from '../validate';

/** Parameters of {@link linear}: tensors, or arrays to upload. */
export interface LinearParams {
  /**
   * Weight, shape [inFeatures, outFeatures], row-major (`x·weight`). As an array: inFeatures ·
   * outFeatures values. (PyTorch's `nn.Linear.weight` is [out, in]: pass its transpose.)
   */
  weight: Tensor | Float32Array | number[];
  /** Bias, shape [outFeatures]; its length fixes outFeatures. */
  bias: Tensor | Float32Array | number[];
}

/**
 * Where {@link Linear.encodeBackward} writes the gradients; each is optional and only what is
 * given is computed. Buffers are overwritten, not accumulated into.
 */
export interface LinearGradBuffers {
  /** ∂x = dy·weightᵀ, [rows, inFeatures]. */
  dx?: BufferRegion | Tensor;
  /** ∂weight = xᵀ·dy (summed over rows), [inFeatures, outFeatures]. */
  weight?: BufferRegion | Tensor;
  /** ∂bias = Σ_rows dy, [outFeatures]. */
  bias?: BufferRegion | Tensor;
}

/** Gradients returned by {@link Linear.backward}, named after the parameters. */
export interface LinearGrads {
  /** ∂x, only when asked for with `{ inputGrad: true }`. */
  dx?: Tensor;
  /** ∂weight, [inFeatures, outFeatures]. */
  weight: Tensor;
  /** ∂bias, [outFeatures]. */
  bias: Tensor;
}

type ParamValue = Tensor | Float32Array | number[];


function checkValues(given: ParamValue, name: string): void {
  const value = readParam(given, name);
  if (value instanceof Tensor) return;
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) throw new NonFiniteError(name, `value ${value[i]} at index ${i} is not finite`);
  }
}

/**
 * Dense layer `y = x·weight + bias` over row-major batches: x [rows, inFeatures] → y [rows, outFeatures].
 * Create with {@link linear}; call `prepare()` once before the `encode*` methods. It is also a
 * {@link Stage} of a `sequential` implicit layer.
 */
export class Linear implements Stage {
  readonly kind = 'linear';
  readonly readsQd = false;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The trainable parameters: weight [inFeatures, outFeatures] and bias [outFeatures]. */
  readonly params: Readonly<{ weight: Tensor; bias: Tensor }>;
  /** The dense product with the empty epilogue (src/layers/dense.ts). */
  private readonly dense: DenseKernels;
  private readonly lifetime: Lifetime;

  /** @internal Use {@link linear}. `owned`: the parameters it uploaded (freed by dispose). */
  constructor(readonly engine: Engine, weight: Tensor, bias: Tensor, owned: Tensor[] = []) {
    this.lifetime = new Lifetime(owned, 'linear layer');
    this.inFeatures = weight.shape[0];
    this.outFeatures = weight.shape[1];
    this.params = Object.freeze({ weight, bias });
    this.dense = new DenseKernels(engine, this.inFeatures, this.outFeatures, NO_EPILOGUE, 'auto', 'rows', 'linear', false);
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.lifetime.disposed;
  }

  /**
   * Frees the parameters the stage uploaded from arrays (tensors passed in stay the caller's);
   * using the stage afterwards throws DisposedError. `Sequential.dispose()` calls it. Safe to
   * call twice.
   */
  dispose(): void {
    if (this.lifetime.end()) this.dense.dispose();
  }

  /** As a stage: rows of inFeatures. */
  get inputSize(): number {
    return this.inFeatures;
  }

  /** @internal The stage view used by `sequential`: the product alone. */
  instantiate(engine: Engine, inputSize: number, index = 0): StageKernels {
    return this.instantiateFused(engine, inputSize, index, NO_EPILOGUE, 'auto');
  }

  /** @internal The stage view with the elementwise stages after it fused into its kernels. */
  instantiateFused(engine: Engine, _inputSize: number, index: number, epilogue: Epilogue, choice: ForwardKernelChoice): StageKernels {
    if (engine !== this.engine) throw new Error('linear stage: engine mismatch (checked by sequential)');
    this.lifetime.assertLive(`stages[${index}]`);
    return new FusedLinearKernels(this, new DenseKernels(engine, this.inFeatures, this.outFeatures, epilogue, choice, 'Qd', 'sequential'));
  }

  /** @internal Throws DisposedError (`argument`) after dispose(). */
  assertLive(argument = 'linear'): void {
    this.lifetime.assertLive(argument);
  }

  /** Compiles the kernels (once per engine); needed before `encodeForward`/`encodeBackward`. */
  async prepare(): Promise<void> {
    this.lifetime.assertLive('linear');
    await this.dense.prepare(1);
  }

  private prepared(): DenseKernels {
    this.lifetime.assertLive('linear');
    if (!this.dense.isPrepared(1)) throw new Error('Linear.prepare() must run before encoding');
    return this.dense;
  }

  /** Throws unless `rows` is a positive integer whose tiles fit the device's dispatch limits. */
  private checkRows(rows: number): void {
    if (!Number.isInteger(rows) || rows < 1) throw new ShapeError('rows', `must be a positive integer, got ${rows}`);
    this.dense.checkRows(rows);
  }

  /**
   * Encodes `y = x·weight + bias` for `rows` rows (x [rows, inFeatures], y [rows, outFeatures]). `gate`
   * (default: always open) is an evaluation gate as in ForwardIO: nothing runs when its word 0 is set.
   */
  encodeForward(pass: GPUComputePassEncoder, x: BufferRegion | Tensor, y: BufferRegion | Tensor, rows: number, gate = this.engine.openGate()): void {
    readEncoder(pass, 'pass');
    this.checkRows(rows);
    const dense = this.prepared();
    const input = readRegion(x, 'x', this.engine);
    const output = readRegion(y, 'y', this.engine);
    dense.encodeForward(pass, gate, { x: input, weight: this.params.weight.buffer, bias: this.params.bias.buffer }, output, rows);
  }

  /**
   * Encodes the adjoint at input `x` with cotangent `dy` ([rows, outFeatures]): `dx = dy·weightᵀ`,
   * `weight = xᵀ·dy`, `bias = Σ_rows dy`, each only when its buffer is given. Sums run in a fixed
   * order, so the results are deterministic. `gate` as in encodeForward.
   */
  encodeBackward(
    pass: GPUComputePassEncoder,
    x: BufferRegion | Tensor,
    dy: BufferRegion | Tensor,
    grads: LinearGradBuffers,
    rows: number,
    gate = this.engine.openGate(),
  ): void {
    readEncoder(pass, 'pass');
    this.checkRows(rows);
    const dense = this.prepared();
    const { engine } = this;
    const region = (value: BufferRegion | Tensor | undefined, name: string) => (value === undefined ? undefined : readRegion(value, name, engine));
    const input = readRegion(x, 'x', engine);
    const cotangent = readRegion(dy, 'dy', engine);
    if (typeof grads !== 'object' || grads === null) throw new ShapeError('grads', 'must be { dx?, weight?, bias? }');
    readOptions(grads, 'grads', ['dx', 'weight', 'bias']);
    dense.encodeAdjoint(pass, gate, { x: input, weight: this.params.weight.buffer, bias: this.params.bias.buffer }, {
      gradOutput: cotangent,
      gradInput: region(grads.dx, 'grads.dx'),
      gradWeight: region(grads.weight, 'grads.weight'),
      gradBias: region(grads.bias, 'grads.bias'),
    }, rows);
  }

  /** Rows of a [rows, features] tensor, checked. */
  private rowsOf(value: Tensor, features: number, name: string): number {
    const t = readTensor(value, name, this.engine);
    if (t.shape[t.shape.length - 1] !== features) {
      throw new ShapeError(name, `last dimension must be ${features}, got shape [${t.shape.join(', ')}]`);
    }
    return t.size / features;
  }

  /**
   * `x·weight + bias` as a new tensor [rows, outFeatures] (one submit, no readback).
   * @throws ShapeError / DisposedError / EngineMismatchError (`'x'`).
   */
  async forward(x: Tensor): Promise<Tensor> {
    this.engine.assertAlive('linear.forward');
    await this.engine.settleWraps();
    const rows = this.rowsOf(x, this.inFeatures, 'x');
    await this.prepare();
    const { y } = await this.engine.submitInto('linear.forward', () => ({
      y: new Tensor(this.engine, this.engine.allocate(rows * this.outFeatures * 4, 'x'), [rows, this.outFeatures], true),
    }), (pass, out) => this.encodeForward(pass, x, out.y, rows));
    return y;
  }

  /**
   * The adjoint at `x` for cotangent `dy` as new tensors (one submit, no readback); `dx` only
   * with `{ inputGrad: true }`.
   * @throws ShapeError / DisposedError / EngineMismatchError (`'x'`, `'dy'`), OptionError
   * (`'options'`, `'options.<name>'`).
   */
  async backward(x: Tensor, dy: Tensor, options?: { inputGrad?: boolean }): Promise<LinearGrads> {
    const inputGrad = readBoolean(readOptions(options, 'options', ['inputGrad']).inputGrad, 'options.inputGrad', false);
    this.engine.assertAlive('linear.backward');
    await this.engine.settleWraps();
    const rows = this.rowsOf(x, this.inFeatures, 'x');
    if (this.rowsOf(dy, this.outFeatures, 'dy') !== rows) throw new ShapeError('dy', `must have ${rows} rows like x, got shape [${dy.shape.join(', ')}]`);
    await this.prepare();
    const make = (shape: number[]): Tensor => new Tensor(this.engine, this.engine.allocate(shape.reduce((a, b) => a * b, 1) * 4, 'x'), shape, true);
    const outputs = (): { weight: Tensor; bias: Tensor; dx?: Tensor } => {
      const grads: { weight: Tensor; bias: Tensor; dx?: Tensor } = { weight: make([this.inFeatures, this.outFeatures]), bias: make([this.outFeatures]) };
      if (inputGrad) grads.dx = make([rows, this.inFeatures]);
      return grads;
    };
    const grads = await this.engine.submitInto('linear.backward', outputs, (pass, out) => this.encodeBackward(pass, x, dy, out, rows));
    return { weight: grads.weight, bias: grads.bias, dx: grads.dx };
  }
}

/** Largest state (batch × d) the fused Picard kernel holds in one workgroup (shaders/picard_fused.wgsl). */
const FUSED_MAX_STATE = 1024;
/**
 * Largest (values per thread) × d the fused Picard kernel takes on: one workgroup walking the
 * weight serially is latency-bound past it (bench/RESULTS.md has the measurements).
 */
const FUSED_MAX_THREAD_WORK = 256;

/** A linear stage and the elementwise stages fused after it, as `sequential` encodes them. */
class FusedLinearKernels implements StageKernels {
  readonly outputSize: number;
  readonly addsInput = true;
  constructor(
    private readonly linear: Linear,
    private readonly dense: DenseKernels,
  ) {
    this.outputSize = linear.outFeatures;
  }

  async prepare(batch: number): Promise<void> {
    checkBatch(batch);
    this.linear.assertLive();
    await this.dense.prepare(batch);
  }

  private operands(input: BufferRegion, Qd: BufferRegion) {
    const { weight, bias } = this.linear.params;
    return { x: input, weight: weight.buffer, bias: bias.buffer, qd: Qd };
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    this.linear.assertLive();
    this.dense.encodeForward(pass, io.gate, this.operands(io.input, io.Qd), io.output, batch);
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    this.linear.assertLive();
    this.dense.encodeAdjoint(pass, io.gate, this.operands(io.input, io.Qd), {
      gradOutput: io.gradOutput,
      gradInput: io.gradInput,
      gradInputAdd: io.gradInputAdd,
      gradQd: io.gradQd,
      gradWeight: io.gradParams?.weight,
      gradBias: io.gradParams?.bias,
    }, batch);
  }

  /** The fused Picard path of a square, deterministic chain. */
  fusedPicard(batch: number): FusedPicardPath | null {
    const d = this.linear.inFeatures;
    const n = batch * d;
    const tail = d === this.outputSize ? this.fusedTail(batch) : null;
    return tail && { ...tail, wholeState: n <= FUSED_MAX_STATE && Math.ceil(n / 256) * d <= FUSED_MAX_THREAD_WORK };
  }

  /** The product and its deterministic epilogue as the fused path's parts, whatever the input size. */
  fusedTail(batch: number): FusedPicardPath | null {
    if (this.dense.epilogue.ops.includes('dropout')) return null;
    const { weight, bias } = this.linear.params;
    return {
      kind: 'dense', weight: weight.buffer, bias: bias.buffer, constants: this.dense.constants, wholeState: false,
      product: this.dense.fusedProduct(batch),
    };
  }

  dispose(): void {
    this.dense.dispose();
  }
}

/**
 * A dense layer `y = x·weight + bias` with weight [inFeatures, outFeatures] and bias
 * [outFeatures], given as tensors (used in place, so an optimizer stepping them changes the layer)
 * or arrays (uploaded). outFeatures is bias's length; inFeatures is weight's first dimension (or
 * its length / outFeatures). PyTorch's `nn.Linear.weight` is [out, in]: pass its transpose.
 *
 * @throws ShapeError (`'weight'`, `'bias'`), NonFiniteError (`'weight'`, `'bias'`: NaN/Infinity
 * in an array), DisposedError / EngineMismatchError (`'weight'`, `'bias'`), OptionError
 * (`'params.<name>'` for an unknown key, with a did-you-mean: `{ W, b }` → `'weight'`, `'bias'`),
 * DeviceLostError.
 */
export function linear(engine: Engine, params: LinearParams): Linear {
  readEngine(engine, 'engine', 'linear');
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new ShapeError('params', `must be { weight, bias }, got ${describe(params)}`);
  readOptions(params, 'params', ['weight', 'bias']);
  const { weight, bias } = params;
  checkValues(weight, 'weight');
  checkValues(bias, 'bias');
  if (bias instanceof Tensor) {
    bias.assertUsable(engine, 'bias');
    if (bias.shape.length !== 1) throw new ShapeError('bias', `must have shape [outFeatures], got [${bias.shape.join(', ')}]`);
  }
  const outFeatures = bias instanceof Tensor ? bias.shape[0] : bias.length;
  if (outFeatures < 1) throw new ShapeError('bias', 'must not be empty');
  let inFeatures: number;
  if (weight instanceof Tensor) {
    weight.assertUsable(engine, 'weight');
    if (weight.shape.length !== 2 || weight.shape[1] !== outFeatures) {
      throw new ShapeError('weight', `must have shape [inFeatures, ${outFeatures}], got [${weight.shape.join(', ')}]`);
    }
    inFeatures = weight.shape[0];
  } else {
    inFeatures = weight.length / outFeatures;
    if (!Number.isInteger(inFeatures) || inFeatures < 1) {
      throw new ShapeError('weight', `must have inFeatures × ${outFeatures} values (outFeatures from bias), got ${weight.length}`);
    }
  }
  // Checked before either upload, so a failure leaves nothing allocated.
  engine.assertFits(inFeatures * outFeatures * 4, 'weight');
  engine.assertFits(outFeatures * 4, 'bias');
  const { tensors, owned } = uploadAll(engine, [[weight, [inFeatures, outFeatures]], [bias, [outFeatures]]]);
  return new Linear(engine, tensors[0], tensors[1], owned);
}
