/**
 * The tanh implicit block f(u, Qd) = tanh(u @ w + Qd + b): the original's model layer and the
 * first ImplicitLayer.
 */
import type { Engine } from '../engine';
import { LimitError, NonFiniteError, ShapeError } from '../errors';
import type { Kernel } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import { Tensor } from '../tensor';
import type { AdjointIO, ForwardIO, ImplicitLayer } from './layer';

/** Parameters of {@link TanhBlock}: tensors, or arrays to upload. */
export interface TanhBlockParams {
  /** Weight, shape [d, d], row-major (u @ w). */
  w: Tensor | Float32Array | number[];
  /** Bias, shape [d]. */
  b: Tensor | Float32Array | number[];
}

const ROWS_PER_GROUP = 4;
const COLS_PER_GROUP = 64;

type ParamValue = Tensor | Float32Array | number[];

/** Validates a parameter (usable tensor, or finite values of the right count) without uploading it. */
function checkParam(engine: Engine, value: ParamValue, name: string, shape: number[]): ParamValue {
  if (value instanceof Tensor) {
    value.assertUsable(engine, name);
    if (value.shape.join() !== shape.join()) {
      throw new ShapeError(name, `must have shape [${shape.join(', ')}], got [${value.shape.join(', ')}]`);
    }
    return value;
  }
  if (!(value instanceof Float32Array) && !Array.isArray(value)) {
    throw new ShapeError(name, 'must be a Tensor, a Float32Array or a number[]');
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (value.length !== size) throw new ShapeError(name, `must have ${size} values (shape [${shape.join(', ')}]), got ${value.length}`);
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) throw new NonFiniteError(name, `value ${value[i]} at index ${i} is not finite`);
  }
  engine.assertFits(size * 4, name);
  return value;
}

function upload(engine: Engine, value: ParamValue, shape: number[]): Tensor {
  return value instanceof Tensor ? value : engine.tensor(value, shape);
}

/** d of a weight given as a [d, d] tensor or as d² values. */
function featureSizeOf(w: ParamValue): number {
  if (w instanceof Tensor) {
    if (w.shape.length !== 2 || w.shape[0] !== w.shape[1]) throw new ShapeError('w', `must have shape [d, d], got [${w.shape.join(', ')}]`);
    return w.shape[0];
  }
  if (!(w instanceof Float32Array) && !Array.isArray(w)) throw new ShapeError('w', 'must be a Tensor, a Float32Array or a number[]');
  const d = Math.round(Math.sqrt(w.length));
  if (d < 1 || d * d !== w.length) throw new ShapeError('w', `must have d × d values, got ${w.length}`);
  return d;
}

/** `f(u, Qd) = tanh(u @ w + Qd + b)` for states of shape [d] or [batch, d]. */
export class TanhBlock implements ImplicitLayer {
  readonly featureSize: number;
  readonly params: Readonly<{ w: Tensor; b: Tensor }>;
  private kernels?: { forward: Kernel; delta: Kernel; paramGrads: Kernel; inputGrad: Kernel };
  /** δ = ḡ ⊙ (1 − y²) scratch per batch size, for adjoints that do not ask for ∂Qd. */
  private readonly deltas = new Map<number, GPUBuffer>();

  private constructor(readonly engine: Engine, w: Tensor, b: Tensor) {
    this.featureSize = b.size;
    this.params = Object.freeze({ w, b });
  }

  /**
   * @internal Use `engine.implicitBlock`. The feature size d comes from `w` (d × d); `b` must
   * then have d values.
   */
  static create(engine: Engine, params: TanhBlockParams): TanhBlock {
    if (typeof params !== 'object' || params === null) throw new ShapeError('params', 'must be { w, b }');
    const { w, b } = params;
    if (w === undefined) throw new ShapeError('w', 'is required');
    if (b === undefined) throw new ShapeError('b', 'is required');
    const d = featureSizeOf(w);
    const weight = checkParam(engine, w, 'w', [d, d]);
    const bias = checkParam(engine, b, 'b', [d]);
    return new TanhBlock(engine, upload(engine, weight, [d, d]), upload(engine, bias, [d]));
  }

  /**
   * Compiles the forward and adjoint kernels; throws LimitError (`'Qd'`) when `batch` rows need
   * more workgroups than the device allows.
   */
  async prepare(batch: number): Promise<void> {
    const groups = Math.ceil(batch / ROWS_PER_GROUP);
    const limit = this.engine.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups > limit) {
      throw new LimitError('Qd', `${batch} rows need ${groups} workgroups in one dimension; this device allows ${limit} (at most ${limit * ROWS_PER_GROUP} rows)`);
    }
    const { engine } = this;
    this.kernels ??= {
      forward: await engine.kernel('blockForward', SHADERS.blockForward),
      delta: await engine.kernel('blockDelta', SHADERS.blockDelta),
      paramGrads: await engine.kernel('blockParamGrads', SHADERS.blockParamGrads),
      inputGrad: await engine.kernel('blockInputGrad', SHADERS.blockInputGrad),
    };
    if (!this.deltas.has(batch)) this.deltas.set(batch, engine.allocate(batch * this.featureSize * 4, 'Qd'));
  }

  private prepared(batch: number): { kernels: NonNullable<TanhBlock['kernels']>; delta: GPUBuffer } {
    const delta = this.deltas.get(batch);
    if (!this.kernels || !delta) throw new Error(`TanhBlock.prepare(${batch}) must run before encoding`);
    return { kernels: this.kernels, delta };
  }

  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    const { forward } = this.prepared(batch).kernels;
    const d = this.featureSize;
    const { w, b } = this.params;
    const group = forward.bind({
      gate: io.gate,
      params: this.engine.params(forward, { d, batch }),
      u: io.input,
      qd: io.Qd,
      w: w.buffer,
      b: b.buffer,
      out: io.output,
    });
    forward.dispatch(pass, group, Math.ceil(d / COLS_PER_GROUP), Math.ceil(batch / ROWS_PER_GROUP));
  }

  /** δ = ḡ ⊙ (1 − y²) (= ∂Qd), then ∂w = uᵀδ, ∂b = Σ_rows δ and ∂u = δ wᵀ as asked. */
  encodeAdjoint(pass: GPUComputePassEncoder, io: AdjointIO, batch: number): void {
    const { kernels, delta: scratch } = this.prepared(batch);
    const d = this.featureSize;
    const { w, b } = this.params;
    const sizes = { d, batch };
    const delta = io.gradQd ?? scratch;
    const deltaGroup = kernels.delta.bind({
      gate: io.gate, params: this.engine.params(kernels.delta, sizes), u: io.input, qd: io.Qd, w: w.buffer, b: b.buffer,
      g_out: io.gradOutput, delta,
    });
    kernels.delta.dispatch(pass, deltaGroup, Math.ceil(d / COLS_PER_GROUP), Math.ceil(batch / ROWS_PER_GROUP));
    if (io.gradParams) {
      const { w: dw, b: db } = io.gradParams;
      if (!dw || !db) throw new Error('TanhBlock adjoint needs gradParams.w and gradParams.b together');
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
