/**
 * `conv2d`: a 3×3 convolution, stride 1, 'same' zero padding, over NHWC images stored one per
 * batch row (shaders/stages/conv2d.wgsl), for MDEQ-style image models.
 */
import type { Engine } from '../../engine';
import { ShapeError } from '../../errors';
import type { Kernel } from '../../gpu/kernel';
import { SHADERS } from '../../gpu/shaders';
import { Tensor } from '../../tensor';
import { Lifetime, checkParam, readParam, uploadAll, type ParamValue } from '../params';
import { readEngine, readOptions } from '../../validate';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { gridGroups } from './common';
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

type Conv2dKernelSet = { forward: Kernel; inputGrad: Kernel; weightGrad: Kernel; biasGrad: Kernel };

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
    if (engine !== this.engine) throw new Error('conv2d stage: engine mismatch (checked by sequential)');
    this.lifetime.assertLive(`stages[${index}]`);
    if (inputSize !== this.inputSize) {
      throw new ShapeError(
        `stages[${index}]`,
        `conv2d takes rows of height·width·inChannels = ${this.height}·${this.width}·${this.inChannels} = ${this.inputSize}, got ${inputSize}`,
      );
    }
    return new Conv2dKernels(this);
  }
}

class Conv2dKernels implements StageKernels {
  private kernels?: Conv2dKernelSet;
  readonly outputSize: number;

  constructor(private readonly conv: Conv2d) {
    this.outputSize = conv.outputSize;
  }

  async prepare(batch: number): Promise<void> {
    this.conv.lifetime.assertLive('f');
    checkBatch(batch);
    const { engine, inChannels, outChannels } = this.conv;
    // Fails early (LimitError) rather than at encode time.
    workgroupGrid(engine, 9 * inChannels * Math.ceil(outChannels / 4), 'weight');
    if (this.kernels) return;
    const [forward, inputGrad, weightGrad, biasGrad] = await Promise.all([
      engine.kernel('stageConv2d', SHADERS.stageConv2d, 'forward_main'),
      engine.kernel('stageConv2dInputGrad', SHADERS.stageConv2d, 'input_grad_main'),
      engine.kernel('stageConv2dWeightGrad', SHADERS.stageConv2d, 'weight_grad_main'),
      engine.kernel('stageConv2dBiasGrad', SHADERS.stageConv2d, 'bias_grad_main'),
    ]);
    this.kernels = { forward, inputGrad, weightGrad, biasGrad };
  }

  private prepared(): Conv2dKernelSet {
    this.conv.lifetime.assertLive('f');
    if (!this.kernels) throw new Error('conv2d stage: prepare() must run before encoding');
    return this.kernels;
  }

  private uniforms(kernel: Kernel, batch: number): GPUBuffer {
    const { height, width, inChannels, outChannels } = this.conv;
    return this.conv.engine.params(kernel, { batch, height, width, in_ch: inChannels, out_ch: outChannels });
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    const { forward } = this.prepared();
    const { engine, params } = this.conv;
    const group = forward.bind({
      gate: io.gate,
      params: this.uniforms(forward, batch),
      x: io.input,
      weight: params.weight.buffer,
      bias: params.bias.buffer,
      y: io.output,
    });
    forward.dispatch(pass, group, gridGroups(engine, batch * this.outputSize));
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    const kernels = this.prepared();
    const { engine, params, inputSize, inChannels, outChannels } = this.conv;
    const gate = io.gate;
    if (io.gradInput) {
      const k = kernels.inputGrad;
      const group = k.bind({ gate, params: this.uniforms(k, batch), g_out: io.gradOutput, weight: params.weight.buffer, g_in: io.gradInput });
      k.dispatch(pass, group, gridGroups(engine, batch * inputSize));
    }
    const quads = Math.ceil(outChannels / 4);
    const gradWeight = io.gradParams?.weight;
    if (gradWeight) {
      const k = kernels.weightGrad;
      const group = k.bind({ gate, params: this.uniforms(k, batch), x: io.input, g_out: io.gradOutput, g_weight: gradWeight });
      k.dispatch(pass, group, ...workgroupGrid(engine, 9 * inChannels * quads, 'weight'));
    }
    const gradBias = io.gradParams?.bias;
    if (gradBias) {
      const k = kernels.biasGrad;
      const group = k.bind({ gate, params: this.uniforms(k, batch), g_out: io.gradOutput, g_bias: gradBias });
      k.dispatch(pass, group, ...workgroupGrid(engine, quads, 'bias'));
    }
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
