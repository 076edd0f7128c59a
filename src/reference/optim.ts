// Optimizers in float64, written straight from their textbook formulas (β^t by Math.pow, not
// the GPU's geometric sums), as the oracle for src/optim/. Each instance keeps its own state and
// updates the parameter arrays it is given in place.

/** Adam / AdamW hyper-parameters (AdamW: decoupled decay p ← p − lr·wd·p). */
export interface RefAdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Adam with decoupled weight decay (PyTorch `AdamW`; `Adam` when weightDecay = 0). */
export class RefAdam {
  private t = 0;
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];

  constructor(sizes: readonly number[], public options: RefAdamOptions) {
    this.m = sizes.map((n) => new Float64Array(n));
    this.v = sizes.map((n) => new Float64Array(n));
  }

  /** One step: updates every `params[k]` in place with `grads[k]`. */
  step(params: Float64Array[], grads: readonly ArrayLike<number>[]): void {
    const { lr, beta1, beta2, eps, weightDecay } = this.options;
    this.t++;
    const c1 = 1 - Math.pow(beta1, this.t);
    const c2 = 1 - Math.pow(beta2, this.t);
    params.forEach((p, k) => {
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < p.length; i++) {
        p[i] -= lr * weightDecay * p[i];
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
    });
  }
}

/** SGD hyper-parameters (PyTorch `SGD`, dampening 0, no Nesterov). */
export interface RefSgdOptions {
  lr: number;
  momentum: number;
  weightDecay: number;
}

/** SGD with momentum and L2 weight decay added to the gradient. */
export class RefSgd {
  private readonly buf: Float64Array[];
  private first = true;

  constructor(sizes: readonly number[], public options: RefSgdOptions) {
    this.buf = sizes.map((n) => new Float64Array(n));
  }

  /** One step: updates every `params[k]` in place with `grads[k]`. */
  step(params: Float64Array[], grads: readonly ArrayLike<number>[]): void {
    const { lr, momentum, weightDecay } = this.options;
    params.forEach((p, k) => {
      const g = grads[k];
      const buf = this.buf[k];
      for (let i = 0; i < p.length; i++) {
        const d = g[i] + weightDecay * p[i];
        // PyTorch initialises the buffer with the first gradient, then averages.
        buf[i] = momentum === 0 ? d : this.first ? d : momentum * buf[i] + d;
        p[i] -= lr * buf[i];
      }
    });
    this.first = false;
  }
}
