// The MDEQ-style example (examples/mdeq): the conv + groupNorm + relu cell with an injected
// input, solved with broyden and trained with GDEQ, learns MNIST — a short run of the same model
// the `npm run example:mdeq` command trains, on the same seeded split.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src';
import { loadMnist } from '../demo/mnist/data';
import { DEFAULT_MDEQ, MdeqClassifier } from '../examples/mdeq/model';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create();
});
afterAll(() => engine?.destroy());

const PIXELS = 784;

describe('MDEQ example', () => {
  it('16 GDEQ steps lower the loss and classify held-out digits well above chance', async () => {
    const data = await loadMnist({ seed: 0 });
    const model = new MdeqClassifier(engine, DEFAULT_MDEQ);
    await model.prepare();
    expect(Object.keys(model.cell.params)).toEqual(['0.weight', '0.bias', '2.gamma', '2.beta']);
    const batch = 16;
    const losses: number[] = [];
    for (let step = 0; step < 16; step++) {
      const start = step * batch;
      const { loss, nstep } = await model.trainStep(data.train.images.subarray(start * PIXELS, (start + batch) * PIXELS), data.train.labels.subarray(start, start + batch));
      expect(nstep).toBeGreaterThan(0);
      losses.push(loss);
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    expect(mean(losses.slice(-5))).toBeLessThan(0.75 * mean(losses.slice(0, 5)));
    const accuracy = await model.evaluate(data.test.images.subarray(0, 100 * PIXELS), data.test.labels.subarray(0, 100));
    expect(accuracy).toBeGreaterThan(0.3);
    model.dispose();
  }, 600_000);
});
