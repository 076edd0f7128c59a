/**
 * A deep-equilibrium MNIST classifier trained entirely on the GPU (Node / Dawn):
 *
 * ```
 * Qd     = x·W_in + b_in                 784 → hidden (explicit projection)
 * u*     = tanh(u*·w + Qd + b)           the implicit tanh block, solved by picard/anderson/broyden
 * logits = u*·W_out + b_out              hidden → 10 (explicit head)
 * loss   = softmax cross-entropy
 * ```
 *
 * Backward: dlogits → head adjoints (dW_out, db_out, du*) → the implicit layer with JFB, GDEQ or
 * IFT (dw, db, dQd) → projection adjoints (dW_in, db_in; no dx) → Adam on all six parameters.
 * With `spectralNorm` (a target norm > 0) the block's weight is spectrally normalised,
 * w = target · w_v / σ(w_v) (src/layers/weight-norms.ts): Adam trains w_v in w's place, the
 * wrapper maps ∂w to ∂w_v in the step's last submit and recomputes w (one power iteration) at
 * the start of the next step.
 * Per step, the only GPU→CPU reads are the solve's convergence check and, when asked for, the
 * loss and accuracy. Browser-safe: the model travels as safetensors bytes (`toSafetensors`,
 * `fromSafetensors`); Node's file saving and loading live in ./model-io.
 */
import {
  anderson,
  broyden,
  gdeq,
  ift,
  jacobianPenalty,
  jfb,
  linear,
  loadParams,
  paramsMetadata,
  picard,
  saveParams,
  softmaxCrossEntropy,
  spectralNorm,
  spectralRadius,
  type Adam,
  type Convergence,
  type Engine,
  type FixedPointCache,
  type ImplicitOptions,
  type SampleIndices,
  type ImplicitResult,
  type Linear,
  type ParamsSource,
  type SolveStats,
  type SpectralNorm,
  type Solver,
  type TanhBlock,
  type Tensor,
  adam,
  implicitBlock,
} from '../../src';
import { seededRandom } from './data';

/** Pixels per input image. */
export const INPUTS = 784;
/** Output classes. */
export const CLASSES = 10;

export type SolverName = 'picard' | 'anderson' | 'broyden';
export type BackpropName = 'jfb' | 'gdeq' | 'ift';

export const SOLVERS: Readonly<Record<SolverName, Solver>> = { picard, anderson, broyden };
const BACKPROPS = { jfb, gdeq, ift } as const;

/** Model and training configuration (everything that `save` records besides the weights). */
export interface DeqConfig {
  /** Width of the implicit state. */
  hidden: number;
  solver: SolverName;
  backprop: BackpropName;
  /** Solver iteration limit. */
  maxDepth: number;
  /** Solver tolerance on the absolute residual over the whole batch. */
  eps: number;
  /** Adam learning rate. */
  lr: number;
  /** Seed of the initial weights. */
  seed: number;
  /**
   * Contraction scale c of the initial block weight: entries uniform in ±c/√hidden. The spectral
   * norm of such a matrix is about 2c/√3 (≈ 0.58 at c = 0.5), and tanh' ≤ 1, so the block starts
   * as a contraction and every solver converges from the first step.
   */
  initScale: number;
  /**
   * Spectral normalisation of the block weight to this norm (0: off): w = spectralNorm · w_v /
   * σ(w_v), with one power iteration per training step. Since tanh' ≤ 1, the block's Lipschitz
   * constant in u then stays ≤ spectralNorm throughout training.
   */
  spectralNorm: number;
  /**
   * Weight of the Jacobian penalty (`jacobianPenalty`, one Hutchinson sample per step) whose
   * gradient is added to the block's and the projection's each step; 0 (the default) trains
   * without it.
   */
  jacobianPenalty: number;
}

/** Defaults of {@link DeqConfig}: measured on a 2-core SwiftShader machine (see the CLI). */
export const DEFAULT_CONFIG: DeqConfig = {
  hidden: 64,
  solver: 'picard',
  backprop: 'jfb',
  maxDepth: 8,
  eps: 1e-3,
  lr: 5e-3,
  seed: 0,
  initScale: 0.5,
  spectralNorm: 0,
  jacobianPenalty: 0,
};

/** The target norm `--spectral-norm` sets (a contraction bound with some margin). */
export const SPECTRAL_NORM_TARGET = 0.9;

/** What one training step reports. */
export interface StepStats {
  /** Solver iterations of the forward solve. */
  nstep: number;
  /** Evaluations of f in the forward solve. */
  tnstep: number;
  /** Mean cross-entropy of the batch (only when metrics were asked for). */
  loss?: number;
  /** Fraction of the batch predicted correctly (only when metrics were asked for). */
  accuracy?: number;
  /** The Jacobian penalty's estimate of ‖J_f‖_F² / n (with metrics, when the config has a penalty). */
  jacobian?: number;
  /** ρ(J_f) at the fixed point, before the update (with metrics, when `radiusIterations` > 0). */
  spectralRadius?: number;
}

/** Names and shapes of the six parameters, in save order. */
/** `format` and `version` in a saved model's safetensors metadata. */
const MODEL_FORMAT = 'anchorax-mnist-deq';
const MODEL_VERSION = '2';

export const PARAM_NAMES = ['W_in', 'b_in', 'w', 'b', 'W_out', 'b_out'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];
/**
 * What a model with spectralNorm saves besides: the trainable w_v and the power iteration's
 * vectors (so that training resumes where it stopped).
 */
const SPECTRAL_NAMES = ['w_v', 'w_left', 'w_right'] as const;

function uniform(random: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);
}

/** Initial values: Glorot-uniform projection and head, a contractive block, zero biases. */
export function initialValues(config: DeqConfig): Record<ParamName, Float32Array> {
  const random = seededRandom(config.seed);
  const h = config.hidden;
  return {
    W_in: uniform(random, INPUTS * h, Math.sqrt(6 / (INPUTS + h))),
    b_in: new Float32Array(h),
    w: uniform(random, h * h, config.initScale / Math.sqrt(h)),
    b: new Float32Array(h),
    W_out: uniform(random, h * CLASSES, Math.sqrt(6 / (h + CLASSES))),
    b_out: new Float32Array(CLASSES),
  };
}

/**
 * The classifier: six GPU parameter tensors, an Adam optimizer over them, and reusable input
 * buffers. Create with {@link DeqClassifier.create} or {@link DeqClassifier.load}; call
 * `dispose()` before destroying the engine.
 */
export class DeqClassifier {
  private readonly proj: Linear;
  private readonly head: Linear;
  private readonly block: TanhBlock;
  /** Adam over the trainable tensors (w_v in w's place with spectralNorm); made by {@link prepared}. */
  private optimizer!: Adam;
  /** The block weight's spectral normalisation, with config.spectralNorm > 0. */
  private norm: SpectralNorm | null = null;
  /** Input batch buffer, grown on demand; rows beyond the current batch are ignored. */
  private xBuffer: GPUBuffer | null = null;
  private xRows = 0;
  /** Record every solve's residual trace (solver option `trace`) into {@link lastSolve}. */
  traceSolves = false;
  /**
   * The solves' `convergence` option: with `'per-sample'` each digit's solve stops on its own and
   * {@link lastSolve}'s `perSample` says how long each took. GDEQ's broyden solves stay in
   * `'batch'` mode: per-sample broyden keeps no factors for GDEQ to use.
   */
  convergence: Convergence = 'batch';
  /** Stats of the latest forward solve (training or inference); null before the first. */
  lastSolve: SolveStats | null = null;

  // Protected so ./model-io can subclass with Node-only save/load.
  protected constructor(
    readonly engine: Engine,
    readonly config: DeqConfig,
    protected readonly params: Record<ParamName, Tensor>,
  ) {
    this.proj = linear(engine, { weight: params.W_in, bias: params.b_in });
    this.head = linear(engine, { weight: params.W_out, bias: params.b_out });
    this.block = implicitBlock(engine, { weight: params.w, bias: params.b });
  }

  /** A freshly initialised model (see {@link DeqConfig.initScale} for the block's init). */
  static async create(engine: Engine, config: Partial<DeqConfig> = {}): Promise<DeqClassifier> {
    const full = resolveConfig(config);
    return DeqClassifier.prepared(new DeqClassifier(engine, full, DeqClassifier.uploadParams(engine, full, initialValues(full))));
  }

  /** Uploads host values of the six parameters as GPU tensors of the config's shapes. */
  protected static uploadParams(engine: Engine, config: DeqConfig, values: Record<ParamName, Float32Array>): Record<ParamName, Tensor> {
    return Object.fromEntries(PARAM_NAMES.map((n) => [n, engine.tensor(values[n], shapeOf(n, config.hidden))])) as Record<ParamName, Tensor>;
  }

  /**
   * Sets up the block weight's spectral normalisation (its w_v and vectors loaded from `saved`,
   * a file written by {@link toSafetensors}, when given) and the optimizer, and compiles the
   * model's pipelines before its first step.
   */
  protected static async prepared<T extends DeqClassifier>(model: T, saved?: ParamsSource): Promise<T> {
    const { engine, config, params } = model;
    if (config.spectralNorm > 0) {
      const norm = await spectralNorm(model.block, { targetNorm: config.spectralNorm, initialIterations: saved === undefined ? 15 : 0 });
      model.norm = norm;
      if (saved !== undefined) {
        await loadParams(engine, saved, { into: { w_v: norm.params.v, w_left: norm.state.left, w_right: norm.state.right } });
        await norm.update({ inference: true });
      }
    }
    const trainable = PARAM_NAMES.map((n) => (n === 'w' && model.norm ? model.norm.params.v : params[n]));
    model.optimizer = adam(engine, trainable, { lr: config.lr });
    await Promise.all([model.proj.prepare(), model.head.prepare(), model.optimizer.prepare()]);
    return model;
  }

  /** The tensors a file holds: the six parameters, and with spectralNorm w_v and its vectors. */
  private savedTensors(): Record<string, Tensor> {
    const norm = this.norm;
    if (!norm) return this.params;
    const extra: Record<(typeof SPECTRAL_NAMES)[number], Tensor> = { w_v: norm.params.v, w_left: norm.state.left, w_right: norm.state.right };
    return { ...this.params, ...extra };
  }

  /**
   * The model as a safetensors file: the six parameters under their names (`W_in [784, h]`,
   * `b_in [h]`, `w [h, h]`, `b [h]`, `W_out [h, 10]`, `b_out [10]`; row-major, `x·W` layout) and
   * the config as JSON in the metadata (`format`, `version`, `config`).
   */
  async toSafetensors(): Promise<Uint8Array<ArrayBuffer>> {
    return saveParams(this.engine, this.savedTensors(), { metadata: { format: MODEL_FORMAT, version: MODEL_VERSION, config: JSON.stringify(this.config) } });
  }

  /** A model saved by {@link toSafetensors} (its bytes, a Blob, or a path in Node). */
  static async fromSafetensors(engine: Engine, source: ParamsSource): Promise<DeqClassifier> {
    const { config, params } = await DeqClassifier.readSafetensors(engine, source);
    return DeqClassifier.prepared(new DeqClassifier(engine, config, params), source);
  }

  /** The config and parameters of a file written by {@link toSafetensors}, names and shapes checked. */
  protected static async readSafetensors(engine: Engine, source: ParamsSource): Promise<{ config: DeqConfig; params: Record<ParamName, Tensor> }> {
    const metadata = await paramsMetadata(source);
    if (metadata.format !== MODEL_FORMAT || metadata.version !== MODEL_VERSION || metadata.config === undefined) {
      throw new Error(`not an anchorax MNIST model (metadata format ${JSON.stringify(metadata.format)}, version ${JSON.stringify(metadata.version)})`);
    }
    const config = resolveConfig(JSON.parse(metadata.config) as Partial<DeqConfig>);
    const params = Object.fromEntries(PARAM_NAMES.map((n) => [n, engine.zeros(shapeOf(n, config.hidden))])) as Record<ParamName, Tensor>;
    try {
      await loadParams(engine, source, { into: params });
    } catch (err) {
      for (const n of PARAM_NAMES) params[n].dispose();
      throw err;
    }
    return { config, params };
  }

  /** Sets Adam's learning rate for the steps that follow (for a schedule). */
  setLearningRate(lr: number): void {
    this.optimizer.setLearningRate(lr);
  }

  /** Number of Adam steps taken so far. */
  get steps(): number {
    return this.optimizer.stepCount;
  }

  /** Uploads `rows` images into the reusable input buffer and returns it as a tensor. */
  private upload(images: Float32Array, rows: number): Tensor {
    if (images.length !== rows * INPUTS) throw new Error(`expected ${rows} × ${INPUTS} pixels, got ${images.length}`);
    if (!this.xBuffer || this.xRows < rows) {
      if (this.xBuffer) this.engine.releaseBuffer(this.xBuffer);
      this.xBuffer = this.engine.allocate(rows * INPUTS * 4, 'x');
      this.xRows = rows;
    }
    this.engine.device.queue.writeBuffer(this.xBuffer, 0, images.buffer, images.byteOffset, images.byteLength);
    return this.engine.wrap(this.xBuffer, [rows, INPUTS]);
  }

  private newTensor(shape: number[]): Tensor {
    return this.engine.zeros(shape);
  }

  /** A command encoder holding one compute pass filled by `fill`. */
  private encode(label: string, fill: (pass: GPUComputePassEncoder) => void): GPUCommandEncoder {
    const encoder = this.engine.device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass();
    fill(pass);
    pass.end();
    return encoder;
  }

  private solverOptions(inference: boolean): ImplicitOptions {
    const { maxDepth, eps, solver } = this.config;
    // checkEvery = maxDepth: the whole solve is one submit and one readback (SwiftShader pays
    // ~1 ms per submit and much more per readback round trip).
    const convergence = solver === 'broyden' && this.config.backprop === 'gdeq' && !inference ? 'batch' : this.convergence;
    return { solver: SOLVERS[solver], maxDepth, eps, checkEvery: maxDepth, inference, trace: this.traceSolves, convergence };
  }

  /**
   * One Adam step on a batch: `images` rows × 784, `labels` one per row. With `metrics` the
   * batch loss and accuracy are read back (two extra 4-byte reads); without, the only readback
   * is the solve's. With `warm`, the solve starts from the fixed points `warm.cache` holds for the
   * batch's sample indices (zeros for digits not seen yet) and stores the new ones there. With
   * `metrics` and `radiusIterations` > 0, the spectral radius of the block at the fixed point is
   * estimated with that many power iterations and read together with the loss.
   */
  async trainStep(
    images: Float32Array,
    labels: Uint8Array,
    metrics = false,
    warm?: { cache: FixedPointCache; indices: SampleIndices },
    radiusIterations = 0,
  ): Promise<StepStats> {
    const rows = labels.length;
    const h = this.config.hidden;
    const { engine } = this;
    const x = this.upload(images, rows);
    const Qd = this.newTensor([rows, h]);
    engine.device.queue.submit([this.encode('mnist projection', (pass) => {
      // The block weight from w_v after the last step's update (one power iteration).
      this.norm?.encodeUpdate(pass);
      this.proj.encodeForward(pass, x, Qd, rows);
    }).finish()]);

    const wrapper = BACKPROPS[this.config.backprop];
    const u0 = warm ? await warm.cache.u0(warm.indices) : undefined;
    const options = u0 ? { ...this.solverOptions(false), u0 } : this.solverOptions(false);
    const out: ImplicitResult = await wrapper(this.block, Qd, this.config.backprop === 'ift' ? { ...options, backwardMaxDepth: 4 * this.config.maxDepth } : options);

    const logits = this.newTensor([rows, CLASSES]);
    engine.device.queue.submit([this.encode('mnist head', (pass) => this.head.encodeForward(pass, out.uStar, logits, rows)).finish()]);
    const loss = await softmaxCrossEntropy(logits, labels);

    const gradU = this.newTensor([rows, h]);
    const dWout = this.newTensor([h, CLASSES]);
    const dbout = this.newTensor([CLASSES]);
    engine.device.queue.submit([
      this.encode('mnist head backward', (pass) => this.head.encodeBackward(pass, out.uStar, loss.grad, { dx: gradU, weight: dWout, bias: dbout }, rows)).finish(),
    ]);
    const grads = await out.backward(gradU);
    // The penalty's gradient is added into the block's (and Qd's, so the projection gets it too).
    const penalty = this.config.jacobianPenalty > 0
      ? await jacobianPenalty(this.block, Qd, out.uStar, { weight: this.config.jacobianPenalty, seed: this.steps, addTo: grads })
      : undefined;
    const radius = metrics && radiusIterations > 0 ? await spectralRadius(this.block, Qd, out.uStar, { iterations: radiusIterations }) : undefined;

    const dWin = this.newTensor([INPUTS, h]);
    const dbin = this.newTensor([h]);
    // Projection adjoint and the Adam update share one submit.
    const encoder = this.encode('mnist projection backward + adam', (pass) => {
      this.proj.encodeBackward(pass, x, grads.Qd, { weight: dWin, bias: dbin }, rows);
    });
    const pass = encoder.beginComputePass();
    const dv = this.norm ? this.newTensor([h, h]) : null;
    if (this.norm && dv) this.norm.encodeBackward(pass, grads.weight, { v: dv });
    this.optimizer.encodeStep(pass, [dWin, dbin, dv ?? grads.weight, grads.bias, dWout, dbout]);
    pass.end();
    engine.device.queue.submit([encoder.finish()]);

    if (warm) await warm.cache.store(warm.indices, out.uStar);
    u0?.dispose();
    this.lastSolve = out.stats;
    const stats: StepStats = { nstep: out.stats.nstep, tnstep: out.tnstep };
    if (metrics) {
      // Read together: one wait for the GPU.
      const [value, accuracy, jacobian, rho] = await Promise.all([loss.value(), loss.accuracy(), penalty?.estimate.read(), radius?.read()]);
      Object.assign(stats, { loss: value, accuracy }, jacobian ? { jacobian: jacobian[0] } : {}, rho ? { spectralRadius: rho[0] } : {});
    }
    penalty?.dispose();
    radius?.dispose();
    // Pooled buffers are reused only by work queued after these submits, so freeing now is safe.
    for (const t of [Qd, logits, gradU, dWout, dbout, dWin, dbin, ...Object.values(grads)]) t.dispose();
    dv?.dispose();
    loss.dispose();
    out.dispose();
    x.dispose();
    return stats;
  }

  /** Logits of `rows` images (inference-mode solve), read back as rows × 10 values. */
  private async logits(images: Float32Array, rows: number): Promise<{ logits: Float32Array; nstep: number }> {
    const h = this.config.hidden;
    const { engine } = this;
    const x = this.upload(images, rows);
    const Qd = this.newTensor([rows, h]);
    engine.device.queue.submit([this.encode('mnist projection', (pass) => {
      // The block weight from the current w_v (the last training step changed it), vectors kept.
      this.norm?.encodeUpdate(pass, { inference: true });
      this.proj.encodeForward(pass, x, Qd, rows);
    }).finish()]);
    const { solver, ...options } = this.solverOptions(true);
    const result = await (solver ?? broyden)(this.block, Qd, options);
    const logits = this.newTensor([rows, CLASSES]);
    engine.device.queue.submit([this.encode('mnist head', (pass) => this.head.encodeForward(pass, result.uStar, logits, rows)).finish()]);
    const values = await logits.read();
    for (const t of [Qd, logits, x]) t.dispose();
    const nstep = result.stats.nstep;
    this.lastSolve = result.stats;
    result.dispose();
    return { logits: values, nstep };
  }

  /** Predicted class (first argmax of the logits) of every image, in batches of `batch`. */
  async predict(images: Float32Array, batch = 256): Promise<Uint8Array> {
    const n = images.length / INPUTS;
    if (!Number.isInteger(n)) throw new Error(`images must hold a multiple of ${INPUTS} values`);
    const predictions = new Uint8Array(n);
    for (let start = 0; start < n; start += batch) {
      const rows = Math.min(batch, n - start);
      const { logits } = await this.logits(images.subarray(start * INPUTS, (start + rows) * INPUTS), rows);
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let c = 1; c < CLASSES; c++) if (logits[r * CLASSES + c] > logits[r * CLASSES + best]) best = c;
        predictions[start + r] = best;
      }
    }
    return predictions;
  }

  /** Fraction of `images` whose predicted class equals the label. */
  async evaluate(images: Float32Array, labels: Uint8Array, batch = 256): Promise<number> {
    const predictions = await this.predict(images, batch);
    let correct = 0;
    predictions.forEach((p, i) => {
      if (p === labels[i]) correct++;
    });
    return correct / labels.length;
  }

  /** Frees the parameters, the optimizer state and the input buffer. */
  dispose(): void {
    this.optimizer.dispose();
    this.norm?.dispose();
    for (const n of PARAM_NAMES) this.params[n].dispose();
    if (this.xBuffer) this.engine.releaseBuffer(this.xBuffer);
    this.xBuffer = null;
  }
}

export function shapeOf(name: ParamName, h: number): number[] {
  switch (name) {
    case 'W_in':
      return [INPUTS, h];
    case 'b_in':
    case 'b':
      return [h];
    case 'w':
      return [h, h];
    case 'W_out':
      return [h, CLASSES];
    case 'b_out':
      return [CLASSES];
  }
}

/** Defaults filled in and every field checked. */
export function resolveConfig(config: Partial<DeqConfig>): DeqConfig {
  const full = { ...DEFAULT_CONFIG, ...config };
  checkConfig(full);
  return full;
}

function checkConfig(c: DeqConfig): void {
  if (!Number.isInteger(c.hidden) || c.hidden < 1) throw new Error(`hidden must be a positive integer, got ${c.hidden}`);
  if (!(c.solver in SOLVERS)) throw new Error(`solver must be picard, anderson or broyden, got ${c.solver}`);
  if (!(c.backprop in BACKPROPS)) throw new Error(`backprop must be jfb, gdeq or ift, got ${c.backprop}`);
  if (!Number.isInteger(c.maxDepth) || c.maxDepth < 1) throw new Error(`maxDepth must be a positive integer, got ${c.maxDepth}`);
  if (!Number.isFinite(c.eps)) throw new Error(`eps must be a number, got ${c.eps}`);
  if (!(c.lr >= 0)) throw new Error(`lr must be ≥ 0, got ${c.lr}`);
  if (!(c.spectralNorm >= 0) || !Number.isFinite(c.spectralNorm)) throw new Error(`spectralNorm must be a number ≥ 0 (0: off), got ${c.spectralNorm}`);
  if (!(c.jacobianPenalty >= 0 && Number.isFinite(c.jacobianPenalty))) throw new Error(`jacobianPenalty must be a finite number ≥ 0, got ${c.jacobianPenalty}`);
}
