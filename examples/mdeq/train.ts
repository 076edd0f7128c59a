/**
 * `npm run example:mdeq -- [--steps N (200)] [--batch N] [--channels C] [--groups G] [--lr X] [--test N] [--plot FILE]`:
 * trains the MDEQ-style conv DEQ of ./model.ts on MNIST (the demo's seeded 8,000 / 2,000 split)
 * with broyden + GDEQ, printing the loss as it goes and the held-out accuracy at the end, and
 * writes the loss per step and that accuracy as a plot (demo/mnist/plot.ts) to FILE
 * (default train-out/mdeq-training.svg).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../../src/node';
import { loadMnist } from '../../demo/mnist/data';
import { plotSvg, type PlotPoint } from '../../demo/mnist/plot';
import { DEFAULT_MDEQ, MdeqClassifier } from './model';

const PIXELS = 784;

function positive(value: string | undefined, name: string, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n))) {
    process.stderr.write(`example:mdeq: --${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { steps: { type: 'string' }, batch: { type: 'string' }, channels: { type: 'string' }, groups: { type: 'string' }, lr: { type: 'string' }, test: { type: 'string' }, plot: { type: 'string' } },
  });
  const steps = positive(values.steps, 'steps', 200);
  const batch = positive(values.batch, 'batch', 16);
  const testDigits = positive(values.test, 'test', 500);
  const plotPath = values.plot ?? 'train-out/mdeq-training.svg';
  const config = {
    ...DEFAULT_MDEQ,
    channels: positive(values.channels, 'channels', DEFAULT_MDEQ.channels),
    groups: positive(values.groups, 'groups', DEFAULT_MDEQ.groups),
    lr: positive(values.lr, 'lr', DEFAULT_MDEQ.lr, false),
  };
  const data = await loadMnist({ seed: 0 });
  const engine = await Engine.create();
  const info = engine.device.adapterInfo;
  console.log(`adapter: ${[info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' / ')}`);
  console.log(`MDEQ cell: conv3×3 (${config.channels} channels) → groupNorm (${config.groups} groups) → relu → + Qd; broyden ${config.maxDepth} iterations, GDEQ, Adam ${config.lr}`);
  const model = new MdeqClassifier(engine, config);
  await model.prepare();
  const start = performance.now();
  let window: number[] = [];
  const points: PlotPoint[] = [];
  const train = data.train;
  for (let step = 0; step < steps; step++) {
    const offset = (step * batch) % (train.labels.length - batch);
    const { loss, nstep } = await model.trainStep(train.images.subarray(offset * PIXELS, (offset + batch) * PIXELS), train.labels.subarray(offset, offset + batch));
    window.push(loss);
    points.push({ step: step + 1, loss });
    if ((step + 1) % 25 === 0 || step < 3 || step === steps - 1) {
      const mean = window.reduce((a, b) => a + b, 0) / window.length;
      console.log(`step ${String(step + 1).padStart(4)}  loss ${mean.toFixed(3)}  broyden iterations ${nstep}  ${((performance.now() - start) / (step + 1)).toFixed(0)} ms/step`);
      window = [];
    }
  }
  const test = data.test;
  const n = Math.min(testDigits, test.labels.length);
  const accuracy = await model.evaluate(test.images.subarray(0, n * PIXELS), test.labels.subarray(0, n));
  console.log(`held-out accuracy on ${n} digits: ${(100 * accuracy).toFixed(1)} % (chance: 10 %) after ${steps} steps, ${((performance.now() - start) / 1000).toFixed(0)} s`);
  await mkdir(dirname(plotPath), { recursive: true });
  const title = `MDEQ example: conv ${config.channels} channels, groupNorm ${config.groups} groups, broyden + GDEQ, batch ${batch}`;
  await writeFile(plotPath, await plotSvg(points, [{ step: steps, accuracy }], title));
  console.log(`plot: ${plotPath}`);
  model.dispose();
  engine.destroy();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
