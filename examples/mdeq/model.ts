/**
 * An MDEQ-style convolutional DEQ on 28 × 28 MNIST images, built from the library's composable
 * stages — an example of a user's own implicit layer, not part of the library:
 *
 * ```
 * Qd     = x·a + c                                    per pixel, 1 → C channels (injection)
 * u*     = relu(groupNorm(conv3×3(u*) + Qd))          the implicit cell, NHWC [28, 28, C]
 * logits = u*·W_out + b_out                           28·28·C → 10
 * loss   = softmax cross-entropy
 * ```
 *
 * The cell is `sequential(conv2d, add(Qd), groupNorm, relu())`, solved with broyden and trained
 * with GDEQ; everything stays on the GPU, the only readback per step is the solve's. Qd is added
 * before the normalisation (as in MDEQ): normalising conv(u) alone would blow up small u (at
 * u = 0 it is constant), so the cell would be far from a contraction where the solve starts.
 */
import {
  add,
  broyden,
  conv2d,
  gdeq,
  groupNorm,
  linear,
  Qd as injected,
  relu,
  sequential,
  softmaxCrossEntropy,
  type Adam,
  type Engine,
  type Linear,
  type Sequential,
  type Tensor,
  adam,
} from '../../src';
import { seededRandom } from '../../demo/mnist/data';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;

/** Size and training settings of the example model. */
export interface MdeqConfig {
  /** Channels of the implicit state (per pixel). */
  channels: number;
  /** Groups of the group norm (must divide channels). */
  groups: number;
  /** Broyden iterations per solve. */
  maxDepth: number;
  /** Solver tolerance (absolute residual over the batch). */
  eps: number;
  /** Adam learning rate. */
  lr: number;
  seed: number;
}

export const DEFAULT_MDEQ: MdeqConfig = { channels: 4, groups: 2, maxDepth: 6, eps: 1e-3, lr: 3e-3, seed: 0 };

function uniform(random: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);
}

/** The model's parameters, its cell and Adam over all of them. */
export class MdeqClassifier {
  readonly cell: Sequential;
  private readonly injection: Linear;
  private readonly head: Linear;
  private readonly optimizer: Adam;
  private readonly params: Tensor[];

  constructor(
    readonly engine: Engine,
    readonly config: MdeqConfig,
  ) {
    const random = seededRandom(config.seed);
    const C = config.channels;
    const state = PIXELS * C;
    this.injection = linear(engine, { weight: uniform(random, C, 1), bias: uniform(random, C, 0.1) });
    this.cell = sequential(
      // A small conv: the cell starts close to u ↦ relu(groupNorm(Qd)), a contraction broyden solves in a few steps.
      conv2d(engine, { height: SIDE, width: SIDE, weight: uniform(random, 9 * C * C, 0.2 / Math.sqrt(9 * C)), bias: new Float32Array(C), inChannels: C, outChannels: C }),
      add(injected),
      groupNorm(engine, { groups: config.groups, gamma: new Float32Array(C).fill(1), beta: new Float32Array(C) }),
      relu(),
    );
    this.head = linear(engine, { weight: uniform(random, state * CLASSES, Math.sqrt(6 / (state + CLASSES))), bias: new Float32Array(CLASSES) });
    this.params = [this.injection.params.weight, this.injection.params.bias, ...Object.values(this.cell.params), this.head.params.weight, this.head.params.bias];
    this.optimizer = adam(engine, this.params, { lr: config.lr });
  }

  async prepare(): Promise<void> {
    await Promise.all([this.injection.prepare(), this.head.prepare(), this.optimizer.prepare()]);
  }

  private run(label: string, fill: (pass: GPUComputePassEncoder) => void): void {
    const encoder = this.engine.device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass();
    fill(pass);
    pass.end();
    this.engine.device.queue.submit([encoder.finish()]);
  }

  /** Qd = per-pixel injection of `rows` images (x viewed as [rows·784, 1]). */
  private inject(x: Tensor, rows: number): Tensor {
    const Qd = this.engine.zeros([rows, PIXELS * this.config.channels]);
    this.run('mdeq injection', (pass) => this.injection.encodeForward(pass, x, Qd, rows * PIXELS));
    return Qd;
  }

  /** One GDEQ + broyden + Adam step; returns the batch loss and the solve's iterations. */
  async trainStep(images: Float32Array, labels: Uint8Array): Promise<{ loss: number; nstep: number }> {
    const rows = labels.length;
    const { engine } = this;
    const C = this.config.channels;
    const x = engine.tensor(images, [rows * PIXELS, 1]);
    const Qd = this.inject(x, rows);
    const out = await gdeq(this.cell, Qd, { solver: broyden, maxDepth: this.config.maxDepth, eps: this.config.eps, checkEvery: this.config.maxDepth });
    const logits = engine.zeros([rows, CLASSES]);
    this.run('mdeq head', (pass) => this.head.encodeForward(pass, out.uStar, logits, rows));
    const loss = await softmaxCrossEntropy(logits, labels);
    const gradU = engine.zeros([rows, PIXELS * C]);
    const headGrads = { weight: engine.zeros([PIXELS * C, CLASSES]), bias: engine.zeros([CLASSES]) };
    this.run('mdeq head backward', (pass) => this.head.encodeBackward(pass, out.uStar, loss.grad, { dx: gradU, ...headGrads }, rows));
    const cellGrads = await out.backward(gradU);
    const injectionGrads = { weight: engine.zeros([1, C]), bias: engine.zeros([C]) };
    this.run('mdeq injection backward + adam', (pass) => {
      this.injection.encodeBackward(pass, x, cellGrads.Qd, injectionGrads, rows * PIXELS);
      this.optimizer.encodeStep(pass, [
        injectionGrads.weight, injectionGrads.bias, ...Object.keys(this.cell.params).map((name) => cellGrads[name]), headGrads.weight, headGrads.bias,
      ]);
    });
    const value = await loss.value();
    for (const t of [x, Qd, logits, gradU, headGrads.weight, headGrads.bias, injectionGrads.weight, injectionGrads.bias, ...Object.values(cellGrads)]) t.dispose();
    const nstep = out.stats.nstep;
    loss.dispose();
    out.dispose();
    return { loss: value, nstep };
  }

  /** Fraction of `images` classified as `labels` (inference-mode solves, batches of `batch`). */
  async evaluate(images: Float32Array, labels: Uint8Array, batch = 100): Promise<number> {
    let correct = 0;
    for (let start = 0; start < labels.length; start += batch) {
      const rows = Math.min(batch, labels.length - start);
      const x = this.engine.tensor(images.subarray(start * PIXELS, (start + rows) * PIXELS), [rows * PIXELS, 1]);
      const Qd = this.inject(x, rows);
      const solved = await broyden(this.cell, Qd, { maxDepth: this.config.maxDepth, eps: this.config.eps, checkEvery: this.config.maxDepth, inference: true });
      const logits = this.engine.zeros([rows, CLASSES]);
      this.run('mdeq head', (pass) => this.head.encodeForward(pass, solved.uStar, logits, rows));
      const values = await logits.read();
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let c = 1; c < CLASSES; c++) if (values[r * CLASSES + c] > values[r * CLASSES + best]) best = c;
        if (best === labels[start + r]) correct++;
      }
      for (const t of [x, Qd, logits]) t.dispose();
      solved.dispose();
    }
    return correct / labels.length;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.cell.dispose();
    for (const t of this.params) t.dispose();
  }
}
