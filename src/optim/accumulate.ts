/**
 * Gradient accumulation on the GPU: sum gradients over micro-batches without copying them to the
 * CPU, then hand the sums (or their mean) to an optimizer.
 */
import type { Engine } from '../engine';
import { AnchoraxError, DisposedError } from '../errors';
import type { Kernel } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import type { Tensor } from '../tensor';
import { checkMatching, checkTensorList, dispatchElementwise, region } from './common';
import { F32_MAX, readEncoder, readEngine, readNumber } from '../validate';

/**
 * Running sums of gradient sets, one GPU tensor per parameter, starting at zero.
 *
 * ```ts
 * const acc = gradientAccumulator(engine, opt.params);
 * for (const batch of microBatches) await acc.add(await gradientsOf(batch));
 * await opt.step(await acc.mean());   // or opt.step(acc.grads) for the sum
 * acc.zero();
 * ```
 * `add`, `mean` and `zero` submit their own work; `encodeAdd`, `encodeMean` and `encodeZero`
 * encode into the caller's pass or encoder instead (after `prepare()`), so a whole
 * accumulate-then-step sequence can go into one submit.
 */
export class GradientAccumulator {
  /** The engine all tensors live on. */
  readonly engine: Engine;
  /** The running sums Σ scale·grads, same shapes as the tensors it was made for. Owned by the accumulator. */
  readonly grads: readonly Tensor[];
  private means: Tensor[] | null = null;
  private adds = 0;
  private kernel: Kernel | null = null;
  private preparing: Promise<void> | null = null;
  private isDisposed = false;

  /** @internal Use {@link gradientAccumulator}. */
  constructor(engine: Engine, params: readonly Tensor[]) {
    const tensors = checkTensorList(engine, params, 'params');
    this.engine = engine;
    this.grads = Object.freeze(tensors.map((t) => this.engine.zeros(t.shape)));
  }

  /** Number of gradient sets added (encoded) since construction or the last zero. */
  get count(): number {
    return this.adds;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Compiles the kernel. `add` and `mean` do this themselves; await it before the `encode…` variants. */
  prepare(): Promise<void> {
    this.assertNotDisposed();
    this.preparing ??= this.engine.kernel('accumulate', SHADERS.accumulate).then(
      (kernel) => {
        this.kernel = kernel;
      },
      (err: unknown) => {
        this.preparing = null;
        throw err;
      },
    );
    return this.preparing;
  }

  /**
   * Adds `scale · grads` to the sums and submits the work (nothing is read back).
   * Each distinct `scale` gets one small cached uniform buffer on the engine.
   *
   * @throws ShapeError (`'grads'`, `'grads[i]'`: wrong count or shape, or one of `this.grads`
   * itself), OptionError (`'scale'`: not finite), DisposedError (`'grads[i]'`, `'accumulator'`),
   * EngineMismatchError (`'grads[i]'`).
   */
  async add(grads: readonly Tensor[], scale = 1): Promise<void> {
    await this.engine.settleWraps();
    this.checkAdd(grads, scale);
    await this.prepare();
    await this.engine.submitPass('accumulator.add', (pass) => this.encodeAdd(pass, grads, scale));
  }

  /** Encodes `sums += scale · grads` into the caller's pass; see {@link add}. */
  encodeAdd(pass: GPUComputePassEncoder, grads: readonly Tensor[], scale = 1): void {
    const checked = this.checkAdd(grads, scale);
    const kernel = this.readyKernel('encodeAdd');
    readEncoder(pass, 'pass');
    const params = this.engine.params(kernel, { alpha: 1, beta: scale });
    this.grads.forEach((sum, i) => {
      dispatchElementwise(this.engine, pass, kernel, kernel.bind({ params, x: region(checked[i]), y: region(sum) }), sum.size);
    });
    this.adds++;
  }

  /**
   * The mean `sums / count`, written into tensors the accumulator owns (allocated on first use,
   * then reused: each call overwrites them). Submits the work; nothing is read back.
   *
   * @throws AnchoraxError (`'accumulator'`) when nothing was added since the last zero;
   * DisposedError (`'accumulator'`).
   */
  async mean(): Promise<readonly Tensor[]> {
    this.checkMean();
    await this.prepare();
    let means: readonly Tensor[] = [];
    await this.engine.submitPass('accumulator.mean', (pass) => {
      means = this.encodeMean(pass);
    });
    return means;
  }

  /** Encodes the mean into the caller's pass and returns the tensors it goes to; see {@link mean}. */
  encodeMean(pass: GPUComputePassEncoder): readonly Tensor[] {
    this.checkMean();
    const kernel = this.readyKernel('encodeMean');
    readEncoder(pass, 'pass');
    // Kept: created lazily, possibly inside an engine.scope, but owned by the accumulator.
    this.means ??= this.grads.map((g) => this.engine.keep(this.engine.zeros(g.shape)));
    const means = this.means;
    // alpha = 0: the mean tensors' old contents are overwritten, never read.
    const params = this.engine.params(kernel, { alpha: 0, beta: 1 / this.adds });
    this.grads.forEach((sum, i) => {
      dispatchElementwise(this.engine, pass, kernel, kernel.bind({ params, x: region(sum), y: region(means[i]) }), sum.size);
    });
    return means;
  }

  /** Resets the sums to zero and `count` to 0 (submits a buffer clear). */
  zero(): void {
    this.assertNotDisposed();
    // Not checked (a sync call): clearing the accumulator's own buffers cannot fail validation.
    const encoder = this.engine.device.createCommandEncoder({ label: 'anchorax accumulator zero' });
    this.encodeZero(encoder);
    this.engine.queueSubmit([encoder.finish()]);
  }

  /** Encodes the reset of {@link zero} into the caller's encoder (outside any pass). */
  encodeZero(encoder: GPUCommandEncoder): void {
    this.assertNotDisposed();
    readEncoder(encoder, 'encoder', 'encoder');
    for (const sum of this.grads) encoder.clearBuffer(sum.buffer, 0, sum.size * 4);
    this.adds = 0;
  }

  /** Gives the sums (and mean tensors) back to the engine. Safe to call twice. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    for (const t of [...this.grads, ...(this.means ?? [])]) t.dispose();
    this.means = null;
  }

  private readyKernel(what: string): Kernel {
    if (!this.kernel) throw new AnchoraxError('accumulator', `await prepare() (or one add()) before ${what}()`);
    return this.kernel;
  }

  private checkAdd(grads: readonly Tensor[], scale: number): Tensor[] {
    this.assertNotDisposed();
    this.engine.assertAlive('accumulator.add');
    readNumber(scale, 'scale', 1, { min: -F32_MAX, max: F32_MAX });
    return checkMatching(this.engine, this.grads, grads, 'grads', 'accumulator sums');
  }

  private checkMean(): void {
    this.assertNotDisposed();
    this.engine.assertAlive('accumulator.mean');
    if (this.adds === 0) throw new AnchoraxError('accumulator', 'mean() of no gradients: add() some since the last zero()');
  }

  private assertNotDisposed(): void {
    if (this.isDisposed) throw new DisposedError('accumulator', 'accumulator was disposed');
  }
}

/**
 * Zeroed running sums shaped like `params` (the parameters, or an optimizer's `params`), on
 * `engine`.
 *
 * @throws OptionError (`'engine'`), ShapeError (`'params'`, `'params[i]'`), DisposedError /
 * EngineMismatchError (`'params[i]'`), DeviceLostError.
 */
export function gradientAccumulator(engine: Engine, params: readonly Tensor[]): GradientAccumulator {
  return new GradientAccumulator(readEngine(engine, 'engine', 'gradientAccumulator'), params);
}
