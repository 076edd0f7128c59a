/**
 * Normalisation stages: `groupNorm` over NHWC rows and `layerNorm` over whole rows, one kernel set
 * (shaders/stages/norm.wgsl) parameterised by (rows, groups, channels, spatial): layer
 * normalisation of a row of d features is group normalisation with one group of d channels at one
 * spatial position.
 */
import type { Engine } from '../../engine';
import { ShapeError } from '../../errors';
import { KernelSet, type Groups, type KernelSpec } from '../../gpu/kernel-set';
import { Tensor } from '../../tensor';
import { NO_EPILOGUE, chainConstants, type Epilogue } from '../dense';
import { Lifetime, checkParam, readParam, uploadAll, type ParamValue } from '../params';
import { F32_MAX, readEngine, readNumber, readOptions } from '../../validate';
import type { FusedNorm } from '../layer';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { checkBatch, workgroupGrid } from './workgroups';

/** Options of {@link groupNorm}. */
export interface GroupNormOptions {
  /** Number of channel groups; must divide the channel count. */
  groups: number;
  /** Per-channel scale, shape [channels]; its length fixes the channel count. */
  gamma: ParamValue;
  /** Per-channel shift, shape [channels]. */
  beta: ParamValue;
  /** Added to the variance before the square root. Default 1e-5 (flax's and Equinox's GroupNorm). */
  eps?: number;
}

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** Per-feature scale, shape [features]; its length fixes the row size. */
  gamma: ParamValue;
  /** Per-feature shift, shape [features]. */
  beta: ParamValue;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

const DEFAULT_EPS = 1e-5;


/** A group or layer normalisation stage (see {@link groupNorm}, {@link layerNorm}). */
export class Norm implements Stage {
  readonly readsQd = false;
  /** gamma and beta, each [channels]. */
  readonly params: Readonly<{ gamma: Tensor; beta: Tensor }>;
  /** Channels per spatial position (layerNorm: the row size). */
  readonly channels: number;
  /** layerNorm fixes the row size to its feature count; groupNorm takes any multiple of channels. */
  readonly inputSize?: number;
  /** @internal */
  readonly lifetime: Lifetime;

  /** @internal Use {@link groupNorm} or {@link layerNorm}. */
  constructor(
    readonly kind: 'groupNorm' | 'layerNorm',
    readonly engine: Engine,
    readonly groups: number,
    readonly eps: number,
    gamma: Tensor,
    beta: Tensor,
    owned: Tensor[] = [],
  ) {
    this.lifetime = new Lifetime(owned, `${kind} stage`);
    this.params = Object.freeze({ gamma, beta });
    this.channels = gamma.size;
    if (kind === 'layerNorm') this.inputSize = this.channels;
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

  /** @internal Binds the stage for rows of `inputSize` floats, [spatial, channels] each. */
  instantiate(engine: Engine, inputSize: number, index: number): StageKernels {
    return this.instantiateFused(engine, inputSize, index, NO_EPILOGUE);
  }

  /** @internal Binds the stage with the elementwise stages after it fused into its kernels. */
  instantiateFused(engine: Engine, inputSize: number, index: number, epilogue: Epilogue): StageKernels {
    if (engine !== this.engine) throw new Error(`${this.kind} stage: engine mismatch (checked by sequential)`);
    this.lifetime.assertLive(`stages[${index}]`);
    const { channels } = this;
    if (this.kind === 'layerNorm' && inputSize !== channels) {
      throw new ShapeError(`stages[${index}]`, `layerNorm with ${channels} features (gamma's length) cannot take rows of ${inputSize}`);
    }
    if (!Number.isInteger(inputSize) || inputSize < 1 || inputSize % channels !== 0) {
      throw new ShapeError(`stages[${index}]`, `groupNorm over ${channels} channels needs a row size that is a multiple of ${channels} (NHWC), got ${inputSize}`);
    }
    return new NormKernels(this, inputSize / channels, epilogue);
  }
}

/** One dispatch of a norm kernel: its grid, computed by the caller. */
interface NormProblem {
  groups: Groups;
}

const byGroups = (p: NormProblem): Groups => p.groups;

/** The norm kernels, as data, with `constants` (the fused epilogue chain) on the two that apply it. */
function normSpecs(constants: Readonly<Record<string, number>>) {
  return {
    forward: { shader: 'stageNorm', entry: 'forward_main', constants, groups: byGroups },
    delta: { shader: 'stageNorm', entry: 'delta_main', constants, groups: byGroups },
    stats: { shader: 'stageNorm', entry: 'stats_main', groups: byGroups },
    inputGrad: { shader: 'stageNorm', entry: 'input_grad_main', groups: byGroups },
    gammaGrad: { shader: 'stageNorm', entry: 'gamma_grad_main', groups: byGroups },
    betaGrad: { shader: 'stageNorm', entry: 'beta_grad_main', groups: byGroups },
  } satisfies Record<string, KernelSpec<NormProblem>>;
}

type NormKernel = keyof ReturnType<typeof normSpecs>;

/**
 * Per batch size: (μ, 1/σ) per (row, group), written and read within one adjoint; with a fused
 * chain, δ (the cotangent at the normalisation's output).
 */
interface NormScratch {
  stats: GPUBuffer;
  delta?: GPUBuffer;
}

class NormKernels implements StageKernels {
  private readonly set: KernelSet<NormProblem, NormKernel, NormScratch>;
  /** A never-written target for the ∂Qd binding when none is asked (WebGPU forbids aliasing writable bindings). */
  private sink?: GPUBuffer;
  /** The chain's override constants (lib/epilogue.wgsl). */
  private readonly constants: Readonly<Record<string, number>>;
  readonly outputSize: number;

  constructor(
    private readonly norm: Norm,
    private readonly spatial: number,
    private readonly epilogue: Epilogue,
  ) {
    this.outputSize = spatial * norm.channels;
    const { engine, groups } = norm;
    const chained = epilogue.ops.length > 0;
    this.constants = Object.freeze(chainConstants(epilogue));
    const specs: Partial<ReturnType<typeof normSpecs>> = normSpecs(this.constants);
    if (!chained) delete specs.delta;
    this.set = new KernelSet(engine, `${norm.kind} stage`, specs, {
      allocate: (batch) => ({
        stats: engine.allocate(batch * groups * 2 * 4, 'Qd'),
        ...(chained ? { delta: engine.allocate(batch * this.outputSize * 4, 'Qd') } : {}),
      }),
      free: ({ stats, delta }) => {
        engine.releaseBuffer(stats);
        if (delta) engine.releaseBuffer(delta);
      },
    }, 'f');
  }

  async prepare(batch: number): Promise<void> {
    this.norm.lifetime.assertLive('f');
    checkBatch(batch);
    workgroupGrid(this.norm.engine, batch * this.norm.groups, 'Qd');
    await this.set.prepare(batch);
    this.sink ??= this.norm.engine.allocate(16, 'Qd');
  }

  /** The normalisation and its chain as parts (not with dropout: its masks follow the gate). */
  fusedNorm(batch: number): FusedNorm | null {
    if (this.epilogue.ops.includes('dropout')) return null;
    const { engine, params, groups, channels, eps } = this.norm;
    return {
      gamma: params.gamma.buffer, beta: params.beta.buffer, constants: this.constants, groups, channels, spatial: this.spatial, eps,
      grid: workgroupGrid(engine, batch * groups, 'Qd'),
    };
  }

  /** Gives the statistics buffers back to the engine (Sequential.dispose). */
  dispose(): void {
    this.set.dispose();
    if (this.sink) this.norm.engine.releaseBuffer(this.sink);
    this.sink = undefined;
  }

  private prepared(batch: number): NormScratch {
    this.norm.lifetime.assertLive('f');
    return this.set.use(batch);
  }

  private uniforms(batch: number, qdMode = 0): Record<string, number> {
    const { groups, channels, eps } = this.norm;
    return { rows: batch, groups, channels, spatial: this.spatial, eps, qd_mode: qdMode, ...this.epilogue.dropout };
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    this.prepared(batch);
    const { engine, params, groups } = this.norm;
    this.set.dispatch(pass, 'forward', { groups: workgroupGrid(engine, batch * groups, 'Qd') }, {
      gate: io.gate, x: io.input, gamma: params.gamma.buffer, beta: params.beta.buffer, epi_qd: io.Qd, y: io.output,
    }, this.uniforms(batch));
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    const { stats, delta } = this.prepared(batch);
    const { engine, params, groups, channels } = this.norm;
    const gate = io.gate;
    const perGroup = { groups: workgroupGrid(engine, batch * groups, 'Qd') };
    const perQuad = { groups: workgroupGrid(engine, Math.ceil(channels / 4), 'gamma') };
    const uniforms = this.uniforms(batch);
    const gradGamma = io.gradParams?.gamma;
    const gradBeta = io.gradParams?.beta;
    let gOut = io.gradOutput;
    if (delta) {
      // The chain's adjoint first: δ is the cotangent the normalisation's own adjoint takes.
      const qdMode = io.gradQd === undefined ? 0 : io.gradQd.accumulate ? 2 : 1;
      this.set.dispatch(pass, 'delta', perGroup, {
        gate, x: io.input, gamma: params.gamma.buffer, beta: params.beta.buffer, epi_qd: io.Qd,
        g_out: io.gradOutput, delta, dqd: io.gradQd?.region ?? (this.sink as GPUBuffer),
      }, this.uniforms(batch, qdMode));
      gOut = delta;
    }
    // input_grad_main saves the statistics gamma_grad_main reads; without ∂x, stats_main does.
    if (io.gradInput) {
      this.set.dispatch(pass, 'inputGrad', perGroup, { gate, x: io.input, gamma: params.gamma.buffer, stats, g_out: gOut, g_in: io.gradInput }, uniforms);
    } else if (gradGamma) {
      this.set.dispatch(pass, 'stats', perGroup, { gate, x: io.input, stats }, uniforms);
    }
    if (gradGamma) {
      this.set.dispatch(pass, 'gammaGrad', perQuad, { gate, x: io.input, stats, g_out: gOut, g_gamma: gradGamma }, uniforms);
    }
    if (gradBeta) this.set.dispatch(pass, 'betaGrad', perQuad, { gate, g_out: gOut, g_beta: gradBeta }, uniforms);
  }
}

function checkEps(eps: unknown): number {
  return readNumber(eps, 'eps', DEFAULT_EPS, { above: 0, max: F32_MAX });
}

/** The channel count fixed by gamma (its length), checked. */
function channelsOf(given: ParamValue | undefined): number {
  const gamma = readParam(given, 'gamma');
  let channels: number;
  if (gamma instanceof Tensor) {
    if (gamma.shape.length !== 1) throw new ShapeError('gamma', `must have shape [channels], got [${gamma.shape.join(', ')}]`);
    channels = gamma.shape[0];
  } else {
    channels = gamma.length;
  }
  if (channels < 1) throw new ShapeError('gamma', 'must not be empty');
  return channels;
}

/** Validates gamma and beta ([channels] each), then uploads them. */
function normParams(engine: Engine, gamma: ParamValue, beta: ParamValue | undefined, channels: number): { tensors: Tensor[]; owned: Tensor[] } {
  if (beta === undefined) throw new ShapeError('beta', 'is required');
  // Both checked before either upload, so a failure leaves nothing allocated.
  const g = checkParam(engine, gamma, 'gamma', [channels]);
  const b = checkParam(engine, beta, 'beta', [channels]);
  return uploadAll(engine, [[g, [channels]], [b, [channels]]]);
}

/**
 * Group normalisation over NHWC rows (as flax's / Equinox's GroupNorm): each batch row is
 * [spatial, channels] row-major with channels = gamma's length, the row size any multiple of
 * channels. Channels are split into `groups` consecutive groups; for each row and group, mean μ
 * and biased variance σ² are taken over all spatial positions and the group's channels, and
 * `y = (x − μ)/√(σ² + eps) · gamma[c] + beta[c]`. The adjoint computes ∂x, ∂gamma and ∂beta (sums in
 * a fixed order: deterministic). Tensors are used in place; arrays are uploaded.
 *
 * @throws ShapeError (`'groups'`: not a positive integer or not dividing the channel count;
 * `'gamma'`, `'beta'`: missing, wrong type, empty, or of different lengths), OptionError
 * (`'eps'`: not a finite number > 0), NonFiniteError / DisposedError / EngineMismatchError
 * (`'gamma'`, `'beta'`), DeviceLostError. Instantiated in a sequential layer at a row size that is
 * not a multiple of the channel count: ShapeError naming `stages[index]`.
 */
export function groupNorm(engine: Engine, options: GroupNormOptions): Norm {
  readEngine(engine, 'engine', 'groupNorm');
  readOptions(options ?? null, 'options', ['groups', 'gamma', 'beta', 'eps']);
  const { groups } = options;
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1) {
    throw new ShapeError('groups', `must be a positive integer, got ${String(groups)}`);
  }
  const eps = checkEps(options.eps);
  const channels = channelsOf(options.gamma);
  if (channels % groups !== 0) throw new ShapeError('groups', `${groups} groups do not divide ${channels} channels (gamma's length)`);
  const { tensors, owned } = normParams(engine, options.gamma, options.beta, channels);
  return new Norm('groupNorm', engine, groups, eps, tensors[0], tensors[1], owned);
}

/**
 * Layer normalisation of each batch row over all its d features (d = gamma's length, which fixes
 * the row size): `y = (x − μ)/√(σ² + eps) · gamma + beta` with the row's mean μ and biased
 * variance σ² (as Equinox's LayerNorm). The same kernels as {@link groupNorm} with one group.
 *
 * @throws ShapeError (`'gamma'`, `'beta'`), OptionError (`'eps'`), NonFiniteError / DisposedError /
 * EngineMismatchError (`'gamma'`, `'beta'`), DeviceLostError. Instantiated in a sequential layer
 * at a row size other than d: ShapeError naming `stages[index]`.
 */
export function layerNorm(engine: Engine, options: LayerNormOptions): Norm {
  readEngine(engine, 'engine', 'layerNorm');
  readOptions(options ?? null, 'options', ['gamma', 'beta', 'eps']);
  const eps = checkEps(options.eps);
  const channels = channelsOf(options.gamma);
  const { tensors, owned } = normParams(engine, options.gamma, options.beta, channels);
  return new Norm('layerNorm', engine, 1, eps, tensors[0], tensors[1], owned);
}
