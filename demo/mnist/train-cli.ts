/**
 * `npm run train -- [flags]`: trains the DEQ MNIST classifier (demo/mnist/model.ts) in Node on
 * the GPU, shows a per-epoch progress bar, and writes the model and a loss/accuracy plot to the
 * out dir. `--eval FILE` instead reloads a saved model and prints its held-out accuracy.
 * Ctrl-C stops after the current step and still saves. Run with `--help` for the flags.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { Engine, fixedPointCache } from '../../src/node';
import { loadMnist } from './data';
import { DEFAULT_CONFIG, DeqClassifier, INPUTS, SOLVERS, SPECTRAL_NORM_TARGET, type BackpropName, type DeqConfig, type SolverName } from './model-io';
import { plotSvg, type HeldOutPoint, type PlotPoint } from './plot';

/**
 * Batch and epochs of a plain `npm run train` (the model defaults are in model.ts). Picard with 8
 * iterations costs about half of Anderson with 12 per step on SwiftShader, so the same time
 * buys more, smaller steps: measured on 2 shared cores, see the README.
 */
const DEFAULT_BATCH = 64;
const DEFAULT_EPOCHS = 9;
/** Random translation of each training digit, in pixels: without it the model overfits 8,000 digits. */
const DEFAULT_SHIFT = 1;

const USAGE = `usage: npm run train -- [flags]
  --solver picard|anderson|broyden   forward solver (default ${DEFAULT_CONFIG.solver})
  --backprop jfb|gdeq|ift            gradient through the implicit layer (default ${DEFAULT_CONFIG.backprop})
  --hidden N                         implicit state width (default ${DEFAULT_CONFIG.hidden})
  --batch N                          batch size (default ${DEFAULT_BATCH})
  --epochs N                         passes over the training split (default ${DEFAULT_EPOCHS})
  --lr X                             Adam learning rate, cosine-decayed to 5% (default ${DEFAULT_CONFIG.lr})
  --seed N                           data split, shuffling and init seed (default 0)
  --max-depth N                      solver iteration limit (default ${DEFAULT_CONFIG.maxDepth})
  --eps X                            solver tolerance, absolute residual (default ${DEFAULT_CONFIG.eps})
  --out DIR                          where model.safetensors and training.svg go (default train-out/)
  --limit N                          train on the first N training digits only
  --shift N                          shift each training digit by up to N pixels at random (default ${DEFAULT_SHIFT}; 0: off)
  --metrics-every N                  read loss/accuracy every N steps (default 5)
  --warm-start                       start each digit's solve from its fixed point of the epoch before (fixedPointCache)
  --spectral-norm                    spectrally normalise the block weight to norm ${SPECTRAL_NORM_TARGET} (spectralNorm, one power iteration per step)
  --jacobian-penalty W               add W × the Jacobian penalty ‖J_f‖_F²/n (jacobianPenalty, 1 sample) to the loss (default 0: off)
  --eval FILE                        load FILE (a model.safetensors) and print held-out accuracy; no training`;

/** Number of held-out digits evaluated. */
const TEST_DIGITS = 2000;

function fail(message: string): never {
  process.stderr.write(`train: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function num(value: string | undefined, name: string, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && (!Number.isInteger(n) || n < 1))) fail(`--${name} must be a ${integer ? 'positive integer' : 'number'}, got ${value}`);
  return n;
}

function oneOf<T extends string>(value: string | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) fail(`--${name} must be one of ${allowed.join(', ')}, got ${value}`);
  return value as T;
}

const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        solver: { type: 'string' },
        backprop: { type: 'string' },
        hidden: { type: 'string' },
        batch: { type: 'string' },
        epochs: { type: 'string' },
        lr: { type: 'string' },
        seed: { type: 'string' },
        'max-depth': { type: 'string' },
        eps: { type: 'string' },
        out: { type: 'string' },
        limit: { type: 'string' },
        shift: { type: 'string' },
        'metrics-every': { type: 'string' },
        eval: { type: 'string' },
        'warm-start': { type: 'boolean' },
        'spectral-norm': { type: 'boolean' },
        'jacobian-penalty': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (err) {
    return fail((err as Error).message);
  }
})();

if (flags.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const seed = num(flags.seed, 'seed', 0, false);
const config: DeqConfig = {
  ...DEFAULT_CONFIG,
  solver: oneOf<SolverName>(flags.solver, 'solver', Object.keys(SOLVERS) as SolverName[], DEFAULT_CONFIG.solver),
  backprop: oneOf<BackpropName>(flags.backprop, 'backprop', ['jfb', 'gdeq', 'ift'], DEFAULT_CONFIG.backprop),
  hidden: num(flags.hidden, 'hidden', DEFAULT_CONFIG.hidden, true),
  lr: num(flags.lr, 'lr', DEFAULT_CONFIG.lr, false),
  maxDepth: num(flags['max-depth'], 'max-depth', DEFAULT_CONFIG.maxDepth, true),
  eps: num(flags.eps, 'eps', DEFAULT_CONFIG.eps, false),
  spectralNorm: flags['spectral-norm'] ? SPECTRAL_NORM_TARGET : 0,
  seed,
  jacobianPenalty: num(flags['jacobian-penalty'], 'jacobian-penalty', DEFAULT_CONFIG.jacobianPenalty, false),
};
if (config.jacobianPenalty < 0) fail(`--jacobian-penalty must be ≥ 0, got ${config.jacobianPenalty}`);
const batch = num(flags.batch, 'batch', DEFAULT_BATCH, true);
const epochs = num(flags.epochs, 'epochs', DEFAULT_EPOCHS, true);
const shift = flags.shift === '0' ? 0 : num(flags.shift, 'shift', DEFAULT_SHIFT, true);
const metricsEvery = num(flags['metrics-every'], 'metrics-every', 5, true);
const outDir = flags.out ?? 'train-out';

let stopRequested = false;
process.on('SIGINT', () => {
  // A second Ctrl-C means "now": skip saving.
  if (stopRequested) process.exit(130);
  stopRequested = true;
  process.stderr.write('\ntrain: stopping after the current step (Ctrl-C again to quit at once)\n');
});

/** Fisher–Yates over 0..n−1 with a small LCG, so each epoch's order follows from the seed. */
function shuffled(n: number, epochSeed: number): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  let state = epochSeed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Writes `src` (one 28×28 digit) into `dst` moved by (dx, dy) pixels, filling the uncovered
 * border with 0 (the background).
 */
function shiftDigit(src: Float32Array, dst: Float32Array, dx: number, dy: number): void {
  dst.fill(0);
  for (let y = Math.max(0, dy); y < Math.min(28, 28 + dy); y++) {
    const from = (y - dy) * 28;
    for (let x = Math.max(0, dx); x < Math.min(28, 28 + dx); x++) dst[y * 28 + x] = src[from + x - dx];
  }
}

async function main(): Promise<void> {
  const engine = await Engine.create();
  try {
    const data = await loadMnist({ seed: Math.trunc(seed) });
    const testImages = data.test.images.subarray(0, TEST_DIGITS * INPUTS);
    const testLabels = data.test.labels.subarray(0, TEST_DIGITS);

    if (flags.eval !== undefined) {
      const model = await DeqClassifier.load(engine, flags.eval);
      const t0 = performance.now();
      const accuracy = await model.evaluate(testImages, testLabels);
      process.stdout.write(`${flags.eval}: held-out accuracy ${(100 * accuracy).toFixed(2)}% on ${testLabels.length} digits (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
      model.dispose();
      return;
    }

    const limit = Math.min(num(flags.limit, 'limit', data.train.labels.length, true), data.train.labels.length);
    // The last partial batch of each epoch is dropped (a different digit set each epoch, as
    // the order is reshuffled), so every step has the same shapes.
    const stepsPerEpoch = Math.floor(limit / batch);
    if (stepsPerEpoch < 1) fail(`--batch ${batch} is larger than the ${limit} training digits`);
    const totalSteps = stepsPerEpoch * epochs;
    const model = await DeqClassifier.create(engine, config);
    const cache = flags['warm-start'] ? fixedPointCache(engine, { size: limit, featureSize: config.hidden }) : undefined;
    const indices = new Uint32Array(batch);
    process.stdout.write(
      `DEQ MNIST: hidden ${config.hidden}, ${config.solver} (maxDepth ${config.maxDepth}, eps ${config.eps}), ${config.backprop}, ` +
        `batch ${batch}, lr ${config.lr}, shift ${shift}, ${limit} training digits, ${epochs} epochs × ${stepsPerEpoch} steps` +
        `${cache ? ', warm starts' : ''}${config.spectralNorm > 0 ? `, spectral norm ${config.spectralNorm}` : ''}${config.jacobianPenalty > 0 ? `, Jacobian penalty ${config.jacobianPenalty}` : ''}\n`,
    );

    const points: PlotPoint[] = [];
    const heldOut: HeldOutPoint[] = [];
    const xBatch = new Float32Array(batch * INPUTS);
    const yBatch = new Uint8Array(batch);
    const started = performance.now();
    let step = 0;
    const bar = new cliProgress.SingleBar(
      { format: 'epoch {epoch} [{bar}] {value}/{total} | loss {loss} | acc {acc} | iters {iters} | {ms} ms/step', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    for (let epoch = 1; epoch <= epochs && !stopRequested; epoch++) {
      const order = shuffled(limit, seed * 1000 + epoch);
      let correct = 0;
      let seen = 0;
      let lossSum = 0;
      let lossCount = 0;
      let iterSum = 0;
      let evalSum = 0;
      let jacobianSum = 0;
      let jacobianCount = 0;
      let done = 0;
      const epochStart = performance.now();
      bar.start(stepsPerEpoch, 0, { epoch, loss: '-', acc: '-', iters: '-', ms: '-' });
      let shiftState = (seed * 7919 + epoch) >>> 0 || 1;
      const nextShift = (): number => {
        shiftState = (Math.imul(shiftState, 1664525) + 1013904223) >>> 0;
        return (shiftState >>> 16) % (2 * shift + 1) - shift;
      };
      for (let s = 0; s < stepsPerEpoch && !stopRequested; s++) {
        for (let r = 0; r < batch; r++) {
          const i = order[s * batch + r];
          const digit = data.train.images.subarray(i * INPUTS, (i + 1) * INPUTS);
          if (shift > 0) shiftDigit(digit, xBatch.subarray(r * INPUTS, (r + 1) * INPUTS), nextShift(), nextShift());
          else xBatch.set(digit, r * INPUTS);
          yBatch[r] = data.train.labels[i];
          indices[r] = i;
        }
        // Cosine decay to 5% of the base rate: large steps early, fine-tuning at the end.
        model.setLearningRate(config.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps))));
        const wantMetrics = (s + 1) % metricsEvery === 0 || s === stepsPerEpoch - 1;
        const stats = await model.trainStep(xBatch, yBatch, wantMetrics, cache ? { cache, indices } : undefined);
        step++;
        done++;
        iterSum += stats.nstep;
        evalSum += stats.tnstep;
        if (stats.loss !== undefined && stats.accuracy !== undefined) {
          lossSum += stats.loss;
          lossCount++;
          correct += stats.accuracy * batch;
          seen += batch;
          points.push({ step, loss: stats.loss, accuracy: stats.accuracy });
        }
        if (stats.jacobian !== undefined) {
          jacobianSum += stats.jacobian;
          jacobianCount++;
        }
        bar.update(s + 1, {
          epoch,
          loss: lossCount ? (lossSum / lossCount).toFixed(3) : '-',
          acc: seen ? `${((100 * correct) / seen).toFixed(1)}%` : '-',
          iters: (iterSum / (s + 1)).toFixed(1),
          ms: ((performance.now() - epochStart) / (s + 1)).toFixed(0),
        });
      }
      bar.stop();
      if (done === 0) break;
      // A plain line too, so logs (and non-TTY runs, where the bar is silent) keep the numbers.
      process.stdout.write(
        `epoch ${epoch}: loss ${lossCount ? (lossSum / lossCount).toFixed(3) : '-'}, running accuracy ${seen ? ((100 * correct) / seen).toFixed(1) : '-'}%, ` +
          `mean iterations ${(iterSum / Math.max(done, 1)).toFixed(1)} (f-evaluations ${(evalSum / Math.max(done, 1)).toFixed(1)}), ` +
          `${jacobianCount ? `‖J_f‖²/n ${(jacobianSum / jacobianCount).toFixed(3)}, ` : ''}${((performance.now() - epochStart) / Math.max(done, 1)).toFixed(0)} ms/step, ` +
          `${((performance.now() - started) / 1000).toFixed(0)} s elapsed\n`,
      );
      // Held-out accuracy for the plot after every epoch but the last (evaluated below anyway).
      if (epoch < epochs && !stopRequested) heldOut.push({ step, accuracy: await model.evaluate(testImages, testLabels) });
    }
    const trainSeconds = (performance.now() - started) / 1000;

    const evalStart = performance.now();
    const accuracy = await model.evaluate(testImages, testLabels);
    const evalSeconds = (performance.now() - evalStart) / 1000;
    await mkdir(outDir, { recursive: true });
    const modelPath = await model.save(outDir);
    const plotPath = join(outDir, 'training.svg');
    heldOut.push({ step, accuracy });
    await writeFile(plotPath, await plotSvg(points, heldOut, `DEQ MNIST: ${config.solver} + ${config.backprop}, hidden ${config.hidden}, batch ${batch}`));
    process.stdout.write(
      `${stopRequested ? 'stopped early after' : 'trained'} ${step} steps in ${trainSeconds.toFixed(1)} s ` +
        `(${((1000 * trainSeconds) / Math.max(step, 1)).toFixed(0)} ms/step)\n` +
        `held-out accuracy: ${(100 * accuracy).toFixed(2)}% on ${testLabels.length} digits (${evalSeconds.toFixed(1)} s)\n` +
        `total time: ${((performance.now() - started) / 1000).toFixed(1)} s\nmodel: ${modelPath}\nplot: ${plotPath}\n`,
    );
    cache?.dispose();
    model.dispose();
  } finally {
    engine.destroy();
  }
}

// Dawn keeps Node's event loop alive, so the process ends explicitly.
main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`train: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
