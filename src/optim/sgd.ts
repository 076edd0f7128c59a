/**
 * Stochastic gradient descent with optional momentum and weight decay; the momentum buffers live
 * on the GPU.
 */
import type { Engine } from '../engine';
import type { Kernel, UniformLayout } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import type { Tensor } from '../tensor';
import { dispatchElementwise, region } from './common';
import { F32_MAX, readEngine, readNumber, readOptions } from '../validate';
import { Optimizer } from './optimizer';

/** Options of {@link sgd}. */
export interface SgdOptions {
  /** Learning rate, ≥ 0 (change it later with `setLearningRate`). Default 1e-3. */
  lr?: number;
  /** Momentum μ in [0, 1). 0 keeps no momentum buffers. Default 0. */
  momentum?: number;
  /**
   * L2 weight decay, ≥ 0, added to the gradient (`g + weightDecay·p`) before momentum, as in
   * PyTorch's `SGD`. Without momentum this equals decoupled decay. Default 0.
   */
  weightDecay?: number;
}

const KNOWN = ['lr', 'momentum', 'weightDecay'] as const;

interface SgdConfig {
  lr: number;
  momentum: number;
  weightDecay: number;
}

function resolve(options: SgdOptions | undefined): SgdConfig {
  const o = readOptions(options, 'options', KNOWN);
  return {
    lr: readNumber(o.lr, 'options.lr', 1e-3, { min: 0, max: F32_MAX }),
    momentum: readNumber(o.momentum, 'options.momentum', 0, { min: 0, below: 1 }),
    weightDecay: readNumber(o.weightDecay, 'options.weightDecay', 0, { min: 0, max: F32_MAX }),
  };
}

/**
 * SGD (PyTorch semantics, no dampening, no Nesterov). Per element, with gradient g:
 * ```
 * d = g + weightDecay·p
 * buf ← momentum·buf + d      (buf starts at 0; skipped when momentum is 0, where buf = d)
 * p ← p − lr·buf
 * ```
 *
 * ```ts
 * const opt = sgd(engine, [f.params.weight, f.params.bias], { lr: 0.1, momentum: 0.9 });
 * await opt.step([grads.weight, grads.bias]);
 * ```
 */
export class SGD extends Optimizer {
  /** Momentum μ. */
  readonly momentum: number;
  /** L2 weight decay. */
  readonly weightDecay: number;
  /** Momentum buffers; empty when momentum is 0. */
  private readonly buffers: Tensor[];
  private kernel: Kernel | null = null;

  /**
   * @internal Use {@link sgd}.
   * @throws OptionError (`'options'`, `'options.<name>'`), ShapeError (`'params'`,
   * `'params[i]'`), DisposedError / EngineMismatchError (`'params[i]'`), DeviceLostError.
   */
  constructor(engine: Engine, params: readonly Tensor[], options?: SgdOptions) {
    const config = resolve(options);
    super(engine, params, config.lr, 'sgd');
    this.momentum = config.momentum;
    this.weightDecay = config.weightDecay;
    this.buffers = this.momentum > 0 ? this.params.map((p) => engine.zeros(p.shape)) : [];
  }

  protected async compile(): Promise<UniformLayout> {
    const kernel =
      this.momentum > 0
        ? await this.engine.kernel('sgd.momentum', SHADERS.sgd, 'momentum')
        : await this.engine.kernel('sgd', SHADERS.sgd, 'main');
    this.kernel = kernel;
    const layout = kernel.params;
    if (!layout) throw new Error('sgd.wgsl declares no params uniform');
    return layout;
  }

  protected uniformValues(lr: number): Record<string, number> {
    return { lr, momentum: this.momentum, weight_decay: this.weightDecay };
  }

  protected encodeUpdate(pass: GPUComputePassEncoder, grads: readonly Tensor[], hyper: GPUBuffer): void {
    const kernel = this.kernel;
    if (!kernel) throw new Error('SGD kernel is not compiled');
    this.params.forEach((p, i) => {
      const resources = { params: hyper, param: region(p), grad: region(grads[i]) };
      const group = kernel.bind(this.momentum > 0 ? { ...resources, buf: region(this.buffers[i]) } : resources);
      dispatchElementwise(this.engine, pass, kernel, group, p.size);
    });
  }

  protected releaseState(): void {
    for (const t of this.buffers) t.dispose();
  }
}

/**
 * An SGD optimizer over `params`, with optional momentum and (L2, PyTorch-style) weight decay.
 *
 * @throws OptionError (`'engine'`, `'options'`, `'options.<name>'`), ShapeError (`'params'`,
 * `'params[i]'`), DisposedError / EngineMismatchError (`'params[i]'`), DeviceLostError.
 */
export function sgd(engine: Engine, params: readonly Tensor[], options?: SgdOptions): SGD {
  return new SGD(readEngine(engine, 'engine', 'sgd'), params, options);
}
