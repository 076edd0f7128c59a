/**
 * The tanh implicit block f(u, Qd) = tanh(u @ w + Qd + b): the original's model layer and the
 * first ImplicitLayer.
 */
import type { Engine } from '../engine';
import { NonFiniteError, ShapeError } from '../errors';
import type { Kernel } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import { Tensor } from '../tensor';
import type { ForwardIO, ImplicitLayer } from './layer';

/** Parameters of {@link TanhBlock}: tensors, or arrays to upload. */
export interface TanhBlockParams {
  /** Weight, shape [d, d], row-major (u @ w). */
  w: Tensor | Float32Array | number[];
  /** Bias, shape [d]. */
  b: Tensor | Float32Array | number[];
}

const ROWS_PER_GROUP = 4;
const COLS_PER_GROUP = 64;

function toTensor(engine: Engine, value: Tensor | Float32Array | number[], name: string, shape: number[]): Tensor {
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
  return engine.tensor(value, shape);
}

/** `f(u, Qd) = tanh(u @ w + Qd + b)` for states of shape [d] or [batch, d]. */
export class TanhBlock implements ImplicitLayer {
  readonly featureSize: number;
  readonly params: Readonly<{ w: Tensor; b: Tensor }>;
  private forward?: Kernel;

  private constructor(readonly engine: Engine, w: Tensor, b: Tensor) {
    this.featureSize = b.size;
    this.params = Object.freeze({ w, b });
  }

  /** @internal Use `engine.implicitBlock`. */
  static create(engine: Engine, params: TanhBlockParams): TanhBlock {
    if (typeof params !== 'object' || params === null) throw new ShapeError('params', 'must be { w, b }');
    const { w, b } = params;
    if (b === undefined) throw new ShapeError('b', 'is required');
    if (w === undefined) throw new ShapeError('w', 'is required');
    const d = b instanceof Tensor ? b.size : b.length;
    if (b instanceof Tensor && b.shape.length !== 1) throw new ShapeError('b', `must have shape [d], got [${b.shape.join(', ')}]`);
    if (d < 1) throw new ShapeError('b', 'must have at least one value');
    return new TanhBlock(engine, toTensor(engine, w, 'w', [d, d]), toTensor(engine, b, 'b', [d]));
  }

  async prepare(): Promise<void> {
    this.forward ??= await this.engine.kernel('blockForward', SHADERS.blockForward);
  }

  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    const kernel = this.forward;
    if (!kernel) throw new Error('TanhBlock.prepare() must run before encodeForward');
    const d = this.featureSize;
    const { w, b } = this.params;
    const group = kernel.bind({
      gate: io.gate,
      params: this.engine.params(kernel, { d, batch }),
      u: io.input,
      qd: io.Qd,
      w: w.buffer,
      b: b.buffer,
      out: io.output,
    });
    kernel.dispatch(pass, group, Math.ceil(d / COLS_PER_GROUP), Math.ceil(batch / ROWS_PER_GROUP));
  }
}
