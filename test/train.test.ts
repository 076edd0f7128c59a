// The MNIST DEQ classifier of demo/mnist: a short GPU training run on a 1,000-digit subset learns
// (held-out accuracy ≥ 80%), the Jacobian penalty makes the block more contractive, and a saved
// model (model.safetensors) reloads with identical predictions.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, fixedPointCache, loadParams, type Engine } from '../src';
import { refLargestSingularValue } from '../src/reference';
import { loadMnist, type MnistData } from '../demo/mnist/data';
import { DeqClassifier, INPUTS } from '../demo/mnist/model-io';
import { DeqClassifier as BaseClassifier } from '../demo/mnist/model';
import { createTestEngine } from './helpers/engine';

let engine: Engine;
let data: MnistData;
let model: DeqClassifier | undefined;
let dir: string;

beforeAll(async () => {
  engine = await createTestEngine();
  data = await loadMnist({ seed: 1 });
  dir = await mkdtemp(join(tmpdir(), 'anchorax-train-'));
});
afterAll(async () => {
  model?.dispose();
  engine?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const TRAIN = 1000;
const TEST = 1000;
const BATCH = 50;

describe('MNIST DEQ training', () => {
  it('a few epochs on 1,000 digits reach ≥ 80% held-out accuracy', async () => {
    // Small and shallow so the run fits the test budget on SwiftShader; the CLI's defaults are larger.
    model = await DeqClassifier.create(engine, { hidden: 32, solver: 'anderson', maxDepth: 8, lr: 5e-3, seed: 3 });
    const testImages = data.test.images.subarray(0, TEST * INPUTS);
    const testLabels = data.test.labels.subarray(0, TEST);
    const before = await model.evaluate(testImages, testLabels);
    const losses: number[] = [];
    for (let epoch = 0; epoch < 4; epoch++) {
      for (let start = 0; start < TRAIN; start += BATCH) {
        const stats = await model.trainStep(
          data.train.images.subarray(start * INPUTS, (start + BATCH) * INPUTS),
          data.train.labels.subarray(start, start + BATCH),
          start === 0,
        );
        expect(stats.nstep).toBeGreaterThan(0);
        if (stats.loss !== undefined) losses.push(stats.loss);
      }
    }
    expect(model.steps).toBe(4 * (TRAIN / BATCH));
    const after = await model.evaluate(testImages, testLabels);
    expect(before).toBeLessThan(0.5);
    expect(after).toBeGreaterThanOrEqual(0.8);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
  }, 150_000);

  it('warm starts: a batch seen before (learning rate 0) starts from its stored fixed points and needs fewer iterations', async () => {
    const warmModel = await DeqClassifier.create(engine, { hidden: 16, solver: 'picard', maxDepth: 40, eps: 1e-4, lr: 5e-3, seed: 5 });
    const cache = fixedPointCache(engine, { size: TRAIN, featureSize: 16 });
    const images = data.train.images.subarray(0, BATCH * INPUTS);
    const labels = data.train.labels.subarray(0, BATCH);
    const indices = Uint32Array.from({ length: BATCH }, (_, i) => i);
    warmModel.setLearningRate(0);
    const cold = await warmModel.trainStep(images, labels, false, { cache, indices });
    expect(cache.count).toBe(BATCH);
    const warm = await warmModel.trainStep(images, labels, false, { cache, indices });
    expect(cold.nstep).toBeGreaterThan(4);
    expect(warm.nstep).toBeLessThan(cold.nstep / 2);
    cache.dispose();
    warmModel.dispose();
  }, 60_000);

  it('--jacobian-penalty: the penalised model ends with a smaller ‖J_f‖, spectral radius and solve than the same model without', async () => {
    await expect(BaseClassifier.create(engine, { jacobianPenalty: -1 })).rejects.toThrow(/jacobianPenalty must be a finite number ≥ 0/);
    const config = { hidden: 16, solver: 'picard', maxDepth: 10, lr: 1e-2, seed: 7 } as const;
    const [plain, penalised] = await Promise.all([BaseClassifier.create(engine, config), BaseClassifier.create(engine, { ...config, jacobianPenalty: 5 })]);
    const last: Record<'plain' | 'penalised', { nstep: number; jacobian?: number; spectralRadius?: number }> = { plain: { nstep: 0 }, penalised: { nstep: 0 } };
    const jacobians: number[] = [];
    for (let step = 0; step < 10; step++) {
      const images = data.train.images.subarray(step * BATCH * INPUTS, (step + 1) * BATCH * INPUTS);
      const labels = data.train.labels.subarray(step * BATCH, (step + 1) * BATCH);
      const radiusIterations = step === 9 ? 40 : 0;
      last.plain = await plain.trainStep(images, labels, true, undefined, radiusIterations);
      last.penalised = await penalised.trainStep(images, labels, true, undefined, radiusIterations);
      expect(last.plain.jacobian).toBeUndefined();
      jacobians.push(last.penalised.jacobian ?? Number.NaN);
    }
    expect(jacobians.every((j) => Number.isFinite(j) && j > 0)).toBe(true);
    expect(jacobians[9]).toBeLessThan(0.7 * jacobians[0]);
    expect(last.penalised.spectralRadius).toBeLessThan(last.plain.spectralRadius ?? 0);
    // A more contractive block: the last solve stops sooner.
    expect(last.penalised.nstep).toBeLessThan(last.plain.nstep);
    plain.dispose();
    penalised.dispose();
  }, 60_000);

  it('save → load (model.safetensors, and its bytes as a Blob) gives identical predictions', async () => {
    if (!model) throw new Error('the training test must run first');
    const images = data.test.images.subarray(0, 300 * INPUTS);
    const expected = await model.predict(images, 128);
    const path = await model.save(dir);
    expect(path).toBe(join(dir, 'model.safetensors'));
    const loaded = await DeqClassifier.load(engine, path);
    const bytes = new Uint8Array(await readFile(path));
    const fromBlob = await BaseClassifier.fromSafetensors(engine, new Blob([bytes]));
    try {
      expect(loaded.config).toEqual(model.config);
      expect(fromBlob.config).toEqual(model.config);
      expect(Array.from(await loaded.predict(images, 128))).toEqual(Array.from(expected));
      expect(Array.from(await fromBlob.predict(images, 128))).toEqual(Array.from(expected));
      // Read by hand: the six parameters, float32, under the documented names and shapes.
      const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, { dtype: string; shape: number[] }>;
      const h = 32;
      const shapes = { W_in: [784, h], b_in: [h], w: [h, h], b: [h], W_out: [h, 10], b_out: [10] };
      for (const [name, shape] of Object.entries(shapes)) expect(header[name]).toMatchObject({ dtype: 'F32', shape });
      expect(bytes.byteLength - 8 - headerLength).toBe(4 * (784 * h + h + h * h + h + h * 10 + 10));
      await expect(BaseClassifier.fromSafetensors(engine, bytes.subarray(0, bytes.byteLength - 4))).rejects.toBeInstanceOf(FormatError);
    } finally {
      loaded.dispose();
      fromBlob.dispose();
    }
  }, 60_000);

  it('--spectral-norm: trains w_v, keeps the block weight at the target norm, and saves/reloads with identical predictions', async () => {
    const h = 16;
    const normed = await DeqClassifier.create(engine, { hidden: h, solver: 'picard', maxDepth: 12, lr: 5e-3, seed: 4, spectralNorm: 0.9 });
    const images = data.test.images.subarray(0, 200 * INPUTS);
    try {
      for (let start = 0; start < 5 * BATCH; start += BATCH) {
        await normed.trainStep(data.train.images.subarray(start * INPUTS, (start + BATCH) * INPUTS), data.train.labels.subarray(start, start + BATCH));
      }
      const expected = await normed.predict(images, 100);
      const path = await normed.save(join(dir, 'spectral'));
      const saved = await loadParams(engine, path);
      expect(Object.keys(saved).sort()).toEqual(['W_in', 'W_out', 'b', 'b_in', 'b_out', 'w', 'w_left', 'w_right', 'w_v']);
      const matrix = async (name: string) => ({ rows: h, cols: h, values: Float64Array.from(await saved[name].read()) });
      const [w, v] = [await matrix('w'), await matrix('w_v')];
      // One power iteration per step from a warm start: σ(w) is the target to a few parts in 1e3.
      expect(refLargestSingularValue(w)).toBeCloseTo(0.9, 2);
      // w is w_v rescaled (by 0.9 / σ(w_v)).
      const norm = (m: Float64Array): number => Math.hypot(...m);
      const ratio = norm(w.values) / norm(v.values);
      for (let k = 0; k < h * h; k++) expect(w.values[k]).toBeCloseTo(ratio * v.values[k], 5);
      for (const t of Object.values(saved)) t.dispose();
      const loaded = await DeqClassifier.load(engine, path);
      try {
        expect(loaded.config.spectralNorm).toBe(0.9);
        expect(Array.from(await loaded.predict(images, 100))).toEqual(Array.from(expected));
      } finally {
        loaded.dispose();
      }
    } finally {
      normed.dispose();
    }
  }, 60_000);
});
