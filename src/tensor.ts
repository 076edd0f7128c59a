/**
 * A float32 tensor living in a GPU buffer. Created by `engine.tensor(...)` (upload),
 * `engine.wrap(...)` (zero-copy over a caller's buffer) or returned by solvers.
 */
import { type AnchoraxError, DisposedError, EngineMismatchError, ShapeError } from './errors';
import { BufferUsage } from './gpu/flags';
import type { Engine } from './engine';

export class Tensor {
  /** Dimensions, row-major. `[d]` or `[batch, d]` for solver states. */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  private _buffer: GPUBuffer | null;
  /** Set when the device rejected a wrapped buffer: the error every later use throws. */
  private rejected: ((argument: string) => AnchoraxError) | null = null;

  /** @internal Use `engine.tensor`, `engine.wrap` or `engine.zeros`. */
  constructor(
    /** The engine whose device owns the buffer. */
    readonly engine: Engine,
    buffer: GPUBuffer,
    shape: readonly number[],
    /** Whether dispose() gives the buffer back to the engine (false for wrapped buffers). */
    private readonly owned: boolean,
  ) {
    this._buffer = buffer;
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    engine.trackTensor(this, owned);
  }

  /** The GPU buffer (float32, row-major). Throws once disposed. */
  get buffer(): GPUBuffer {
    if (!this._buffer) throw new DisposedError('tensor', 'used after dispose()');
    return this._buffer;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this._buffer === null;
  }

  /**
   * Copies the tensor to the CPU.
   * @throws DisposedError (`'tensor'`: disposed, or a wrapped buffer that was destroyed),
   * EngineMismatchError (`'tensor'`: a wrapped buffer of another device), ShapeError (`'tensor'`:
   * a wrapped buffer without COPY_SRC usage), GpuValidationError (`'read'`), DeviceLostError.
   */
  async read(): Promise<Float32Array> {
    await this.engine.settleWraps();
    this.assertUsable(this.engine, 'tensor');
    const buffer = this.buffer;
    if (!(buffer.usage & BufferUsage.COPY_SRC)) throw new ShapeError('tensor', 'its wrapped buffer lacks GPUBufferUsage.COPY_SRC, which read() needs');
    return this.engine.readBuffer(buffer, this.size * 4);
  }

  /** Frees the GPU memory (a wrapped buffer is left to its owner). Safe to call twice. */
  dispose(): void {
    if (!this._buffer) return;
    if (this.owned) this.engine.releaseBuffer(this._buffer);
    this._buffer = null;
    this.engine.untrackTensor(this);
  }

  /** @internal Marks a wrapped tensor whose buffer the device rejected; see `engine.wrap`. */
  reject(error: (argument: string) => AnchoraxError): void {
    this.rejected = error;
  }

  /** @internal Checks that this tensor can be used by `engine` as argument `name`. */
  assertUsable(engine: Engine, name: string): void {
    if (!this._buffer) throw new DisposedError(name, 'tensor was disposed');
    if (this.rejected) throw this.rejected(name);
    if (this.engine !== engine) throw new EngineMismatchError(name, 'tensor belongs to another engine');
  }
}

/** Validates a shape: non-empty list of positive integers. */
export function checkShape(shape: readonly number[], name: string): void {
  if (!Array.isArray(shape) || shape.length === 0 || shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new ShapeError(name, `shape must be a non-empty list of positive integers, got [${String(shape)}]`);
  }
}
