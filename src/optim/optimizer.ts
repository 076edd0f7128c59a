/**
 * What every GPU optimizer shares: the parameter list, the step count, the learning rate and
 * its uniform buffer, `step` / `encodeStep`, and disposal. Subclasses hold their state buffers
 * (moments, momentum) and encode their kernels.
 */
import type { Engine } from '../engine';
import { AnchoraxError, DisposedError, OptionError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import type { UniformLayout } from '../gpu/kernel';
import type { Tensor } from '../tensor';
import { checkMatching, checkTensorList } from './common';
import { F32_MAX, readEncoder, readNumber } from '../validate';

/** A first-order optimizer whose state lives on the GPU. Built by `adam(engine, …)` or `sgd(engine, …)`. */
export abstract class Optimizer {
  /** The engine whose device holds the parameters and the optimizer state. */
  readonly engine: Engine;
  /** The tensors this optimizer updates in place, in the order gradients are given. */
  readonly params: readonly Tensor[];
  private steps = 0;
  private lr: number;
  private hyper: { buffer: GPUBuffer; layout: UniformLayout } | null = null;
  private preparing: Promise<void> | null = null;
  private isDisposed = false;

  /**
   * @throws ShapeError (`'params'`, `'params[i]'`), DisposedError / EngineMismatchError
   * (`'params[i]'`), DeviceLostError.
   */
  protected constructor(engine: Engine, params: readonly Tensor[], lr: number, private readonly kind: string) {
    engine.assertAlive(kind);
    this.engine = engine;
    this.params = Object.freeze(checkTensorList(engine, params, 'params'));
    this.lr = lr;
  }

  /** Number of steps encoded so far (by `step` or `encodeStep`). */
  get stepCount(): number {
    return this.steps;
  }

  /** The current learning rate. */
  get learningRate(): number {
    return this.lr;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * Sets the learning rate of every step submitted from now on. It is written with
   * `queue.writeBuffer`, which the queue orders before any later `submit`: steps already
   * submitted keep the old rate, and all steps of a command buffer submitted later (even ones
   * encoded before this call) use the new one.
   *
   * @throws OptionError (`'lr'`) unless lr is a finite number ≥ 0; DisposedError (`'optimizer'`).
   */
  setLearningRate(lr: number): void {
    this.assertNotDisposed();
    // readNumber treats undefined as "use the default"; here it is an error.
    if (lr === undefined) throw new OptionError('lr', 'is required');
    this.lr = readNumber(lr, 'lr', 0, { min: 0, max: F32_MAX });
    this.writeHyper();
  }

  /**
   * Compiles the kernels and writes the hyper-parameter uniform. `step` does this itself;
   * await it once before the first `encodeStep`.
   */
  prepare(): Promise<void> {
    this.assertNotDisposed();
    if (!this.preparing) {
      this.preparing = this.compile().then(
        (layout) => {
          if (this.isDisposed || this.hyper) return;
          const buffer = this.engine.allocate(layout.size, 'options', BufferUsage.UNIFORM | BufferUsage.COPY_DST);
          this.hyper = { buffer, layout };
          this.writeHyper();
        },
        (err: unknown) => {
          this.preparing = null;
          throw err;
        },
      );
    }
    return this.preparing;
  }

  /**
   * Applies one update with `grads` (one tensor per parameter, same shapes) and submits it.
   * Resolves once the work is submitted, not finished: reads of the parameters queued after it
   * see the update, and nothing is read back to the CPU.
   *
   * @throws ShapeError (`'grads'`, `'grads[i]'`: wrong count, wrong shape, or a parameter's own
   * buffer), DisposedError (`'params[i]'`, `'grads[i]'`, `'optimizer'`), EngineMismatchError
   * (`'grads[i]'`), DeviceLostError.
   */
  async step(grads: readonly Tensor[]): Promise<void> {
    await this.engine.settleWraps();
    this.validate(grads);
    await this.prepare();
    await this.engine.submitPass(`${this.kind}.step`, (pass) => this.encodeStep(pass, grads));
  }

  /**
   * Encodes one update into a compute pass the caller owns, for callers that compose a whole
   * training step (forward, backward, update) into one submit. Several steps may be encoded
   * into one command buffer: the step count the bias corrections need advances on the GPU.
   * Everything is validated before anything is encoded, so a throw leaves the pass untouched.
   * `prepare()` must have resolved first.
   *
   * @throws as {@link step}; AnchoraxError (`'optimizer'`) before `prepare()` has resolved.
   */
  encodeStep(pass: GPUComputePassEncoder, grads: readonly Tensor[]): void {
    const checked = this.validate(grads);
    const hyper = this.hyper;
    if (!hyper) throw new AnchoraxError('optimizer', 'await prepare() (or one step()) before encodeStep()');
    readEncoder(pass, 'pass');
    this.encodeUpdate(pass, checked, hyper.buffer);
    this.steps++;
  }

  /** Gives the optimizer's GPU state back to the engine. The parameters are left alone. Safe to call twice. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    if (this.hyper) this.engine.releaseBuffer(this.hyper.buffer);
    this.hyper = null;
    this.releaseState();
  }

  /** Compiles the subclass's kernels; returns the layout of their shared `params` uniform. */
  protected abstract compile(): Promise<UniformLayout>;

  /** Every member of the `params` uniform for learning rate `lr`. */
  protected abstract uniformValues(lr: number): Record<string, number>;

  /** Encodes one update; `grads` are validated and `hyper` holds the current uniform values. */
  protected abstract encodeUpdate(pass: GPUComputePassEncoder, grads: readonly Tensor[], hyper: GPUBuffer): void;

  /** Releases the subclass's state buffers. */
  protected abstract releaseState(): void;

  private writeHyper(): void {
    if (!this.hyper) return;
    const { buffer, layout } = this.hyper;
    this.engine.device.queue.writeBuffer(buffer, 0, layout.pack(this.uniformValues(this.lr)));
  }

  private assertNotDisposed(): void {
    if (this.isDisposed) throw new DisposedError('optimizer', `${this.kind} optimizer was disposed`);
  }

  private validate(grads: readonly Tensor[]): Tensor[] {
    this.assertNotDisposed();
    this.engine.assertAlive(`${this.kind}.step`);
    this.params.forEach((p, i) => p.assertUsable(this.engine, `params[${i}]`));
    return checkMatching(this.engine, this.params, grads, 'grads', 'params');
  }
}
