/**
 * `conv2d`: a 3×3 convolution, stride 1, 'same' zero padding, over NHWC images stored one per
 * batch row (shaders/stages/conv2d.wgsl), for MDEQ-style image models.
 */
import type { Engine } from '../../engine';
import { ShapeError } from '../../errors';
import { KernelSet, type Groups, type KernelSpec } from '../../gpu/kernel-set';
import { Tensor } from '../../tensor';
import { NO_EPILOGUE, chainConstants, type Epilogue } from '../dense';
import { Lifetime, checkParam, readParam, uploadAll, type ParamValue } from '../params';
import { readEngine, readOptions } from '../../validate';
import type { FusedConv } from '../layer';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { checkBatch, workgroupGrid } from './workgroups';

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Image height in pixels (positive integer). */
  height: number;
  /** Image width in pixels (positive integer). */
  width: number;
  /**
   * Kernel, shape [3, 3, inChannels, outChannels] (HWIO, row-major), as a tensor (used in place)
   * or 9 · inChannels · outChannels values to upload.
   */
  weight: ParamValue;
  /** Bias, shape [outChannels]. */
  bias: ParamValue;
  /** Input channels; for an array `weight` it defaults to weight.length / (9 · outChannels). */
  inChannels?: number;
  /** Output channels; for an array `weight` it defaults to the bias length. */
  outChannels?: number;
}

/** One dispatch of a conv2d kernel: its grid, computed from the problem by the caller. */
interface ConvProblem {
  groups: Groups;
}

const byGroups = (p: ConvProblem): Groups => p.groups;

/** The conv2d kernels, as data, with `constants` (the fused epilogue chain) on the two that apply it. */
function convSpecs(constants: Readonly<Record<string, number>>) {
  return {
    forward: { shader: 'stageConv2d', entry: 'forward_main', constants, groups: byGroups },
    delta: { shader: 'stageConv2d', entry: 'delta_main', constants, groups: byGroups },
    inputGrad: { shader: 'stageConv2d', entry: 'input_grad_main', groups: byGroups },
    weightGrad: { shader: 'stageConv2d', entry: 'weight_grad_main', groups: byGroups },
    biasGrad: { shader: 'stageConv2d', entry: 'bias_grad_main', groups: byGroups },
  } satisfies Record<string, KernelSpec<ConvProblem>>;
}

type ConvKernel = keyof ReturnType<typeof convSpecs>;

/**
 * A 3×3 convolution stage (see {@link conv2d}): rows of height·width·inChannels floats (one NHWC
 * image each) to rows of height·width·outChannels.
 */
export class Conv2d implements Stage {
  readonly kind = 'conv2d';
  readonly readsQd = false;
  /** weight [3, 3, inChannels, outChannels] and bias [outChannels]. */
  readonly params: Readonly<{ weight: Tensor; bias: Tensor }>;
  /** height · width · inChannels. */
  readonly inputSize: number;
  /** height · width · outChannels. */
  readonly outputSize: number;
  /** @internal */
  readonly lifetime: Lifetime;

  /** @internal Use {@link conv2d}. */
  constructor(
    readonly engine: Engine,
    readonly height: number,
    readonly width: number,
    readonly inChannels: number,
    readonly outChannels: number,
    weight: Tensor,
    bias: Tensor,
    owned: Tensor[] = [],
  ) {
    this.lifetime = new Lifetime(owned, 'conv2d stage');
    this.params = Object.freeze({ weight, bias });
    this.inputSize = height * width * inChannels;
    this.outputSize = height * width * outChannels;
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
    this.lifetime.end();
  }

  /** @internal Binds the stage for rows of `inputSize` (which must be height·width·inChannels). */
  instantiate(engine: Engine, inputSize: number, index: number): StageKernels {
    return this.instantiateFused(engine, inputSize, index, NO_EPILOGUE);
  }

  /** @internal Binds the stage with the elementwise stages after it fused into its kernels. */
  instantiateFused(engine: Engine, inputSize: number, index: number, epilogue: Epilogue): StageKernels {
    if (engine !== this.engine) throw new Error('conv2d stage: engine mismatch (checked by sequential)');
    this.lifetime.assertLive(`stages[${index}]`);
    if (inputSize !== this.inputSize) {
      throw new ShapeError(
        `stages[${index}]`,
        `conv2d takes rows of height·width·inChannels = ${this.height}·${this.width}·${this.inChannels} = ${this.inputSize}, got ${inputSize}`,
      );
    }
    return new Conv2dKernels(this, epilogue);
  }
}

/** Per-batch scratch: δ, the cotangent at the convolution's output (with a fused chain). */
interface ConvScratch {
  delta?: GPUBuffer;
}

class Conv2dKernels implements StageKernels {
  private readonly set: KernelSet<ConvProblem, ConvKernel, ConvScratch>;
  /** A never-written target for the ∂Qd binding when none is asked (WebGPU forbids aliasing writable bindings). */
  private sink?: GPUBuffer;
  /** The chain's override constants (lib/epilogue.wgsl). */
  private readonly constants: Readonly<Record<string, number>>;
  readonly outputSize: number;

  constructor(
    private readonly conv: Conv2d,
    private readonly epilogue: Epilogue,
  ) {
    this.outputSize = conv.outputSize;
    const { engine } = conv;
    this.constants = Object.freeze(chainConstants(epilogue));
    const specs: Partial<ReturnType<typeof convSpecs>> = convSpecs(this.constants);
    if (epilogue.ops.length === 0) delete specs.delta;
    this.set = new KernelSet(engine, 'conv2d stage', specs, {
      allocate: (batch) => (epilogue.ops.length > 0 ? { delta: engine.allocate(batch * this.outputSize * 4, 'Qd') } : {}),
      free: (scratch) => {
        if (scratch.delta) engine.releaseBuffer(scratch.delta);
      },
    }, 'f');
  }

  async prepare(batch: number): Promise<void> {
    this.conv.lifetime.assertLive('f');
    checkBatch(batch);
    const { engine, inChannels, outChannels } = this.conv;
    // Fails early (LimitError) rather than at encode time.
    workgroupGrid(engine, 9 * inChannels * Math.ceil(outChannels / 4), 'weight');
    await this.set.prepare(batch);
    this.sink ??= engine.allocate(16, 'Qd');
  }

  private prepared(batch: number): ConvScratch {
    this.conv.lifetime.assertLive('f');
    return this.set.use(batch);
  }

  private uniforms(batch: number, qdMode = 0): Record<string, number> {
    const { height, width, inChannels, outChannels } = this.conv;
    return { batch, height, width, in_ch: inChannels, out_ch: outChannels, qd_mode: qdMode, ...this.epilogue.dropout };
  }

  /** A grid-stride dispatch over n values. */
  private grid(n: number): ConvProblem {
    const limit = this.conv.engine.device.limits.maxComputeWorkgroupsPerDimension;
    return { groups: [Math.max(1, Math.min(Math.ceil(n / 256), limit))] };
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    this.prepared(batch);
    const { params } = this.conv;
    this.set.dispatch(pass, 'forward', this.grid(batch * this.outputSize), {
      gate: io.gate, x: io.input, weight: params.weight.buffer, bias: params.bias.buffer, epi_qd: io.Qd, y: io.output,
    }, this.uniforms(batch));
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    const scratch = this.prepared(batch);
    const { engine, params, inputSize, inChannels, outChannels } = this.conv;
    const gate = io.gate;
    let gOut = io.gradOutput;
    if (scratch.delta) {
      const qdMode = io.gradQd === undefined ? 0 : io.gradQd.accumulate ? 2 : 1;
      this.set.dispatch(pass, 'delta', this.grid(batch * this.outputSize), {
        gate, x: io.input, weight: params.weight.buffer, bias: params.bias.buffer, epi_qd: io.Qd,
        g_out: io.gradOutput, delta: scratch.delta, dqd: io.gradQd?.region ?? (this.sink as GPUBuffer),
      }, this.uniforms(batch, qdMode));
      gOut = scratch.delta;
    }
    if (io.gradInput) {
      this.set.dispatch(pass, 'inputGrad', this.grid(batch * inputSize), { gate, g_out: gOut, weight: params.weight.buffer, g_in: io.gradInput }, this.uniforms(batch));
    }
    const quads = Math.ceil(outChannels / 4);
    const gradWeight = io.gradParams?.weight;
    if (gradWeight) {
      this.set.dispatch(pass, 'weightGrad', { groups: workgroupGrid(engine, 9 * inChannels * quads, 'weight') }, {
        gate, x: io.input, g_out: gOut, g_weight: gradWeight,
      }, this.uniforms(batch));
    }
    const gradBias = io.gradParams?.bias;
    if (gradBias) {
      this.set.dispatch(pass, 'biasGrad', { groups: workgroupGrid(engine, quads, 'bias') }, { gate, g_out: gOut, g_bias: gradBias }, this.uniforms(batch));
    }
  }

  /** The convolution and its chain as parts (not with dropout: its masks follow the gate). */
  fusedConv(): FusedConv | null {
    if (this.epilogue.ops.includes('dropout')) return null;
    const { params, height, width, inChannels, outChannels } = this.conv;
    return { weight: params.weight.buffer, bias: params.bias.buffer, constants: this.constants, height, width, inChannels, outChannels };
  }

  dispose(): void {
    this.set.dispose();
    if (this.sink) this.conv.engine.releaseBuffer(this.sink);
    this.sink = undefined;
  }
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ShapeError(name, `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** The number of values in a parameter as given, before its shape is known. */
function valueCount(given: ParamValue | undefined, name: string): number {
  const value = readParam(given, name);
  return value instanceof Tensor ? value.size : value.length;
}

/**
 * A 3×3 convolution stage, stride 1, 'same' zero padding (cross-correlation, as
 * `jax.lax.conv_general_dilated(..., padding='SAME')` with NHWC/HWIO):
 * `y[n, i, j, o] = bias[o] + Σ_{ky, kx, c} x[n, i + ky − 1, j + kx − 1, c] · weight[ky, kx, c, o]`,
 * taps outside the image reading 0. Each batch row of the state is one image
 * [height, width, inChannels] flattened row-major (row size height·width·inChannels); the output
 * row is [height, width, outChannels]. The adjoint computes ∂x (the transposed convolution),
 * ∂weight and ∂bias (sums over batch and pixels in a fixed order: deterministic).
 *
 * Channel counts: from a weight tensor's shape [3, 3, inChannels, outChannels]; for an array
 * weight, `outChannels` defaults to the bias length and `inChannels` to
 * weight.length / (9 · outChannels). Tensors are used in place (an optimizer stepping them changes
 * the stage); arrays are uploaded.
 *
 * @throws ShapeError (`'height'`, `'width'`, `'inChannels'`, `'outChannels'`: not a positive
 * integer; `'weight'`, `'bias'`: missing, wrong type, or a shape or count inconsistent with the
 * others), NonFiniteError (`'weight'`, `'bias'`), DisposedError / EngineMismatchError
 * (`'weight'`, `'bias'`), LimitError, DeviceLostError. Instantiated in a sequential layer at a row
 * size other than height·width·inChannels: ShapeError naming `stages[index]`.
 */
export function conv2d(engine: Engine, options: Conv2dOptions): Conv2d {
  readEngine(engine, 'engine', 'conv2d');
  readOptions(options ?? null, 'options', ['height', 'width', 'weight', 'bias', 'inChannels', 'outChannels']);
  const height = positiveInteger(options.height, 'height');
  const width = positiveInteger(options.width, 'width');
  const { weight, bias } = options;
  const weightCount = valueCount(weight, 'weight');
  const biasCount = valueCount(bias, 'bias');
  const given = {
    in: options.inChannels === undefined ? undefined : positiveInteger(options.inChannels, 'inChannels'),
    out: options.outChannels === undefined ? undefined : positiveInteger(options.outChannels, 'outChannels'),
  };
  let inChannels: number;
  let outChannels: number;
  if (weight instanceof Tensor) {
    const s = weight.shape;
    if (s.length !== 4 || s[0] !== 3 || s[1] !== 3) {
      throw new ShapeError('weight', `must have shape [3, 3, inChannels, outChannels], got [${s.join(', ')}]`);
    }
    [inChannels, outChannels] = [s[2], s[3]];
    if ((given.in ?? inChannels) !== inChannels || (given.out ?? outChannels) !== outChannels) {
      throw new ShapeError('weight', `shape [${s.join(', ')}] disagrees with inChannels ${given.in} / outChannels ${given.out}`);
    }
  } else {
    outChannels = given.out ?? biasCount;
    if (outChannels < 1) throw new ShapeError('bias', 'must not be empty');
    inChannels = given.in ?? weightCount / (9 * outChannels);
    if (!Number.isInteger(inChannels) || inChannels < 1) {
      throw new ShapeError('weight', `must have 9 · inChannels · ${outChannels} values (outChannels ${given.out === undefined ? 'from bias' : 'given'}), got ${weightCount}`);
    }
  }
  const weightShape = [3, 3, inChannels, outChannels];
  // Both checked before either upload, so a failure leaves nothing allocated.
  const w = checkParam(engine, weight, 'weight', weightShape);
  const b = checkParam(engine, bias, 'bias', [outChannels]);
  const { tensors, owned } = uploadAll(engine, [[w, weightShape], [b, [outChannels]]]);
  return new Conv2d(engine, height, width, inChannels, outChannels, tensors[0], tensors[1], owned);
}
