/**
 * Adam (Kingma & Ba) with optional decoupled weight decay (AdamW, Loshchilov & Hutter), all state
 * on the GPU: first and second moments per parameter, and the step count the bias corrections
 * need (see shaders/adam.wgsl).
 */
import type { Engine } from '../engine';
import type { Kernel, UniformLayout } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import type { Tensor } from '../tensor';
import { dispatchElementwise, region } from './common';
import { F32_MAX, readEngine, readNumber, readOptions } from '../validate';
import { Optimizer } from './optimizer';

/** Options of {@link adam}. */
export interface AdamOptions {
  /** Learning rate, ≥ 0 (change it later with `setLearningRate`). Default 1e-3. */
  lr?: number;
  /** Decay of the first-moment average, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Decay of the second-moment average, in [0, 1). Default 0.999. */
  beta2?: number;
  /** Added to √v̂ in the denominator, ≥ 0. Default 1e-8. */
  eps?: number;
  /**
   * Decoupled (AdamW) weight decay, ≥ 0: each step first shrinks the parameters,
   * `p ← p − lr·weightDecay·p`, separately from the gradient (it is not added to the gradient,
   * so it is not rescaled by the moment estimates). Default 0 (plain Adam).
   */
  weightDecay?: number;
}

const KNOWN = ['lr', 'beta1', 'beta2', 'eps', 'weightDecay'] as const;

interface AdamConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

function resolve(options: AdamOptions | undefined): AdamConfig {
  const o = readOptions(options, 'options', KNOWN);
  return {
    lr: readNumber(o.lr, 'options.lr', 1e-3, { min: 0, max: F32_MAX }),
    beta1: readNumber(o.beta1, 'options.beta1', 0.9, { min: 0, below: 1 }),
    beta2: readNumber(o.beta2, 'options.beta2', 0.999, { min: 0, below: 1 }),
    eps: readNumber(o.eps, 'options.eps', 1e-8, { min: 0, max: F32_MAX }),
    weightDecay: readNumber(o.weightDecay, 'options.weightDecay', 0, { min: 0, max: F32_MAX }),
  };
}

/**
 * Adam / AdamW. With gradient g at step t (t = 1, 2, …), per element:
 * ```
 * p ← p − lr·weightDecay·p
 * m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
 * p ← p − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + eps)
 * ```
 * (PyTorch's `AdamW`, or `Adam` when weightDecay is 0). Moments start at zero.
 *
 * ```ts
 * const opt = adam(engine, [f.params.weight, f.params.bias], { lr: 1e-3 });
 * await opt.step([grads.weight, grads.bias]);
 * ```
 */
export class Adam extends Optimizer {
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** Denominator term. */
  readonly eps: number;
  /** Decoupled weight decay. */
  readonly weightDecay: number;
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  /**
   * The step count as two geometric sums s = 1 + β + … + β^(t−1), advanced by the `tick`
   * kernel. Kept on the GPU rather than written by the CPU each step because `encodeStep` may
   * put several steps into one command buffer: a `queue.writeBuffer` lands before the whole
   * submit, so every step in it would see the last value written.
   */
  private readonly state: Tensor;
  private kernels: { tick: Kernel; update: Kernel } | null = null;

  /**
   * @internal Use {@link adam}.
   * @throws OptionError (`'options'`, `'options.<name>'`), ShapeError (`'params'`,
   * `'params[i]'`), DisposedError / EngineMismatchError (`'params[i]'`), DeviceLostError.
   */
  constructor(engine: Engine, params: readonly Tensor[], options?: AdamOptions) {
    const config = resolve(options);
    super(engine, params, config.lr, 'adam');
    this.beta1 = config.beta1;
    this.beta2 = config.beta2;
    this.eps = config.eps;
    this.weightDecay = config.weightDecay;
    this.m = this.params.map((p) => engine.zeros(p.shape));
    this.v = this.params.map((p) => engine.zeros(p.shape));
    this.state = engine.zeros([2]);
  }

  protected async compile(): Promise<UniformLayout> {
    const [tick, update] = await Promise.all([
      this.engine.kernel('adam.tick', SHADERS.adam, 'tick'),
      this.engine.kernel('adam', SHADERS.adam, 'main'),
    ]);
    this.kernels = { tick, update };
    const layout = update.params;
    if (!layout) throw new Error('adam.wgsl declares no params uniform');
    return layout;
  }

  protected uniformValues(lr: number): Record<string, number> {
    return {
      lr,
      beta1: this.beta1,
      beta2: this.beta2,
      // 1 − β in float64 here: in f32 on the GPU it would lose digits for β near 1.
      one_minus_beta1: 1 - this.beta1,
      one_minus_beta2: 1 - this.beta2,
      eps: this.eps,
      weight_decay: this.weightDecay,
    };
  }

  protected encodeUpdate(pass: GPUComputePassEncoder, grads: readonly Tensor[], hyper: GPUBuffer): void {
    const kernels = this.kernels;
    if (!kernels) throw new Error('Adam kernels are not compiled');
    const state = this.state.buffer;
    kernels.tick.dispatch(pass, kernels.tick.bind({ params: hyper, state }), 1);
    this.params.forEach((p, i) => {
      const group = kernels.update.bind({
        params: hyper,
        state,
        param: region(p),
        grad: region(grads[i]),
        m: region(this.m[i]),
        v: region(this.v[i]),
      });
      dispatchElementwise(this.engine, pass, kernels.update, group, p.size);
    });
  }

  protected releaseState(): void {
    for (const t of [...this.m, ...this.v, this.state]) t.dispose();
  }
}

/**
 * An Adam optimizer over `params` (AdamW when `weightDecay` > 0: the decay is decoupled,
 * `p ← p − lr·weightDecay·p`, not added to the gradient). Moments and step count stay on the GPU.
 *
 * @throws OptionError (`'engine'`, `'options'`, `'options.<name>'`), ShapeError (`'params'`,
 * `'params[i]'`), DisposedError / EngineMismatchError (`'params[i]'`), DeviceLostError.
 */
export function adam(engine: Engine, params: readonly Tensor[], options?: AdamOptions): Adam {
  return new Adam(readEngine(engine, 'engine', 'adam'), params, options);
}
