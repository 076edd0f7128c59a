/**
 * Warm starts: a cache of fixed points on the GPU, one row per sample index, that gives a batch its
 * starting point `u0` and keeps the batch's new uStar — what DEQ-Flow does by hand across video
 * frames and epochs. Rows move by buffer copies in one submit; nothing is read back.
 */
import type { Engine } from '../engine';
import { DisposedError, OptionError, ShapeError } from '../errors';
import { Tensor } from '../tensor';
import { describe, readEngine, readInteger, readOptions, readTensor } from '../validate';

/** Options of {@link fixedPointCache}. */
export interface FixedPointCacheOptions {
  /** Samples the cache holds a row for (indices 0 … size − 1), a positive integer. */
  size: number;
  /** The state's row size d (the layer's featureSize). */
  featureSize: number;
}

/** Sample indices: a list of integers in [0, size). */
export type SampleIndices = readonly number[] | Uint32Array;

/**
 * Fixed points by sample index (see {@link fixedPointCache}). `u0(indices)` gives a batch's
 * starting point, with the stored row of each index that has one and zeros for the others;
 * `store(indices, uStar)` keeps a solve's result.
 */
export class FixedPointCache {
  readonly size: number;
  readonly featureSize: number;
  private readonly rows: GPUBuffer;
  private readonly held: Uint8Array;
  private heldCount = 0;
  private ended = false;

  /** @internal Use {@link fixedPointCache}. */
  constructor(
    readonly engine: Engine,
    size: number,
    featureSize: number,
  ) {
    this.size = size;
    this.featureSize = featureSize;
    this.rows = engine.allocate(size * featureSize * 4, 'options.size');
    this.held = new Uint8Array(size);
  }

  /** How many indices hold a fixed point. */
  get count(): number {
    return this.heldCount;
  }

  /** Whether `index` holds a fixed point. */
  has(index: number): boolean {
    this.assertLive();
    return this.held[this.checkIndex(index, 'index')] === 1;
  }

  /**
   * A new `[batch, d]` tensor (`[d]` for one index given as a number): row r is the stored fixed
   * point of `indices[r]`, or zeros where none is stored (a cold start). One submit, no readback.
   * @throws ShapeError / OptionError (`'indices'`), DisposedError (`'cache'`), DeviceLostError.
   */
  async u0(indices: SampleIndices | number): Promise<Tensor> {
    this.assertLive();
    const list = this.readIndices(indices, false);
    const d = this.featureSize;
    const shape = typeof indices === 'number' ? [d] : [list.length, d];
    const out = new Tensor(this.engine, this.engine.allocate(list.length * d * 4, 'indices'), shape, true);
    try {
      await this.engine.submit('fixedPointCache.u0', (encoder) => {
        this.copyRuns(list, (from, to, count) => {
          if (this.held[from] === 1) encoder.copyBufferToBuffer(this.rows, from * d * 4, out.buffer, to * d * 4, count * d * 4);
          else encoder.clearBuffer(out.buffer, to * d * 4, count * d * 4);
        }, true);
      });
    } catch (err) {
      out.dispose();
      throw err;
    }
    return out;
  }

  /**
   * Keeps row r of `uStar` ([batch, d], or [d] with one index) as the fixed point of `indices[r]`,
   * replacing what the index held. One submit; `uStar` stays the caller's.
   * @throws ShapeError / OptionError (`'indices'`: out of range, repeated, not integers),
   * ShapeError / DisposedError / EngineMismatchError (`'uStar'`), DisposedError (`'cache'`).
   */
  async store(indices: SampleIndices | number, uStar: Tensor): Promise<void> {
    this.assertLive();
    const list = this.readIndices(indices, true);
    readTensor(uStar, 'uStar', this.engine);
    const d = this.featureSize;
    if (uStar.size !== list.length * d || uStar.shape[uStar.shape.length - 1] !== d) {
      throw new ShapeError('uStar', `must have shape [${list.length}, ${d}] for ${list.length} indices, got [${uStar.shape.join(', ')}]`);
    }
    await this.engine.submit('fixedPointCache.store', (encoder) => {
      this.copyRuns(list, (from, to, count) => encoder.copyBufferToBuffer(uStar.buffer, to * d * 4, this.rows, from * d * 4, count * d * 4), false);
    });
    for (const index of list) {
      if (this.held[index] === 0) this.heldCount++;
      this.held[index] = 1;
    }
  }

  /** Forgets the given indices' fixed points (all of them without an argument): they start cold again. */
  forget(indices?: SampleIndices | number): void {
    this.assertLive();
    if (indices === undefined) {
      this.held.fill(0);
      this.heldCount = 0;
      return;
    }
    for (const index of this.readIndices(indices, false)) {
      if (this.held[index] === 1) this.heldCount--;
      this.held[index] = 0;
    }
  }

  /** Frees the cache's GPU memory; later use throws DisposedError (`'cache'`). Safe to call twice. */
  dispose(): void {
    if (this.ended) return;
    this.ended = true;
    this.engine.releaseBuffer(this.rows);
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.ended;
  }

  /**
   * Calls `copy(from, to, count)` for runs of consecutive indices (cache rows from … from + count
   * − 1 to batch rows to … to + count − 1), each run of one kind (held or not) when `byHeld`.
   */
  private copyRuns(list: readonly number[], copy: (from: number, to: number, count: number) => void, byHeld: boolean): void {
    let start = 0;
    for (let r = 1; r <= list.length; r++) {
      const continues = r < list.length && list[r] === list[r - 1] + 1 && (!byHeld || this.held[list[r]] === this.held[list[start]]);
      if (!continues) {
        copy(list[start], start, r - start);
        start = r;
      }
    }
  }

  private checkIndex(index: unknown, argument: string): number {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new OptionError(argument, `must be an integer in [0, ${this.size - 1}], got ${describe(index)}`);
    }
    return index;
  }

  private readIndices(indices: unknown, distinct: boolean): number[] {
    if (typeof indices === 'number') return [this.checkIndex(indices, 'indices')];
    if (!Array.isArray(indices) && !(indices instanceof Uint32Array)) {
      throw new ShapeError('indices', `must be an index, an array of indices or a Uint32Array, got ${describe(indices)}`);
    }
    if (indices.length === 0) throw new ShapeError('indices', 'must not be empty');
    const list = Array.from(indices as ArrayLike<unknown>, (index, r) => this.checkIndex(index, `indices[${r}]`));
    if (distinct) {
      const seen = new Set<number>();
      list.forEach((index, r) => {
        if (seen.has(index)) throw new OptionError(`indices[${r}]`, `repeats index ${index}: one batch stores one fixed point per index`);
        seen.add(index);
      });
    }
    return list;
  }

  private assertLive(): void {
    if (this.ended) throw new DisposedError('cache', 'the fixed-point cache was disposed');
  }
}

/**
 * A cache of fixed points on the GPU, keyed by sample index, for warm starts:
 * `const u0 = await cache.u0(indices); const r = await picard(f, Qd, { u0 }); await cache.store(indices, r.uStar)`.
 * Rows of indices never stored start at zeros. Holds `size · featureSize` floats.
 * @throws OptionError (`'options'`, `'options.size'`, `'options.featureSize'`), LimitError
 * (`'options.size'`: too large for the device), DeviceLostError.
 */
export function fixedPointCache(engine: Engine, options: FixedPointCacheOptions): FixedPointCache {
  readEngine(engine, 'engine', 'fixedPointCache');
  const o = readOptions(options ?? null, 'options', ['size', 'featureSize']);
  if (o.size === undefined) throw new OptionError('options.size', 'is required (the number of samples)');
  if (o.featureSize === undefined) throw new OptionError('options.featureSize', "is required (the layer's featureSize)");
  const size = readInteger(o.size, 'options.size', 1, 1);
  const featureSize = readInteger(o.featureSize, 'options.featureSize', 1, 1);
  engine.assertAlive('fixedPointCache');
  return new FixedPointCache(engine, size, featureSize);
}
