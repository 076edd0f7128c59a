// Softmax cross-entropy on the GPU (shaders/softmax_xent.wgsl) against the float64 oracle
// (src/reference/softmax.ts): loss, gradient and accuracy count, for row counts around the
// 256-row workgroup, extreme logits, GPU-resident labels; the oracle's gradient checked by
// central finite differences.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, softmaxCrossEntropy, type Engine } from '../src';
import { BufferUsage } from '../src/gpu/flags';
import { refSoftmaxCrossEntropy } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** Random float32-representable logits of size ≤ scale and labels in [0, classes). */
function problem(seed: number, rows: number, classes: number, scale: number): { logits: Float64Array; labels: Uint32Array } {
  const random = rng(seed);
  return {
    logits: Float64Array.from(Float32Array.from(randomArray(random, rows * classes, scale))),
    labels: Uint32Array.from({ length: rows }, () => Math.floor(random() * classes)),
  };
}

/** Makes the label the argmax in every other row, so the accuracy count is neither 0 nor rows. */
function plantHits(logits: Float64Array, labels: Uint32Array, classes: number): void {
  for (let r = 0; r < labels.length; r += 2) logits[r * classes + labels[r]] = 4 * Math.max(1, ...logits.subarray(r * classes, (r + 1) * classes).map(Math.abs));
}

describe('reference softmax cross-entropy', () => {
  it('its gradient matches central finite differences of the loss', () => {
    const classes = 4;
    const { logits, labels } = problem(1, 3, classes, 3);
    const { grad } = refSoftmaxCrossEntropy(logits, labels, classes);
    const h = 1e-6;
    const fd = Float64Array.from(logits, (_, i) => {
      const plus = Float64Array.from(logits);
      const minus = Float64Array.from(logits);
      plus[i] += h;
      minus[i] -= h;
      return (refSoftmaxCrossEntropy(plus, labels, classes).loss - refSoftmaxCrossEntropy(minus, labels, classes).loss) / (2 * h);
    });
    expect(maxAbsDiff(grad, fd)).toBeLessThan(1e-8);
    expect(Math.max(...grad.map(Math.abs))).toBeGreaterThan(0.05);
  });

  it('gives log(classes) for equal logits and counts the first maximum as the prediction', () => {
    const out = refSoftmaxCrossEntropy([0, 0, 0, 0, 0, 0], [0, 1], 3);
    expect(out.loss).toBeCloseTo(Math.log(3), 14);
    expect(out.correct).toBe(1);
  });
});

// [rows, classes]: one row; rows not a multiple of 4; more rows than one 256-thread workgroup.
const CASES: [number, number][] = [
  [1, 10],
  [5, 10],
  [33, 17],
  [300, 10],
  [600, 3],
];

describe('GPU softmax cross-entropy', () => {
  it.each(CASES)('rows %i, classes %i: loss, gradient and correct count match the float64 reference', async (rows, classes) => {
    const { logits, labels } = problem(rows * 100 + classes, rows, classes, 5);
    plantHits(logits, labels, classes);
    const expected = refSoftmaxCrossEntropy(logits, labels, classes);
    const logitsT = engine.tensor(Float32Array.from(logits), [rows, classes]);
    const out = await softmaxCrossEntropy(logitsT, labels);
    expect(out.grad.shape).toEqual([rows, classes]);
    expect(maxAbsDiff(await out.grad.read(), expected.grad)).toBeLessThan(1e-6 / rows);
    expect(Math.abs((await out.value()) - expected.loss)).toBeLessThan(2e-6 * Math.max(1, expected.loss));
    expect((await out.correct.read())[0]).toBe(expected.correct);
    expect(await out.accuracy()).toBeCloseTo(expected.correct / rows, 12);
    expect(expected.correct).toBeGreaterThanOrEqual(Math.ceil(rows / 2));
    out.dispose();
    logitsT.dispose();
  });

  it('more rows than 256 workgroups of 256 (threads loop over rows): still exact', async () => {
    const rows = 66_000;
    const classes = 2;
    const { logits, labels } = problem(9, rows, classes, 2);
    const expected = refSoftmaxCrossEntropy(logits, labels, classes);
    const logitsT = engine.tensor(Float32Array.from(logits), [rows, classes]);
    const out = await softmaxCrossEntropy(logitsT, labels);
    expect(Math.abs((await out.value()) - expected.loss)).toBeLessThan(1e-5);
    expect((await out.correct.read())[0]).toBe(expected.correct);
    expect(maxAbsDiff(await out.grad.read(), expected.grad)).toBeLessThan(1e-6 / rows);
    out.dispose();
    logitsT.dispose();
  });

  // ±80 is what an untrained DEQ head can produce; ±1000 overflows exp() unless the max is subtracted.
  it.each([80, 1000])('logits of ±%i stay finite and match the reference', async (big) => {
    const rows = 6;
    const classes = 10;
    const random = rng(4);
    const logits = Float64Array.from({ length: rows * classes }, () => (random() < 0.5 ? -big : big));
    // Labels at the first +big logit (a tie: a hit only with first-maximum argmax; loss ≈ log of
    // the tie count) and at a −big logit (loss ≈ 2·big).
    const labels = Uint32Array.from({ length: rows }, (_, r) => {
      const row = logits.subarray(r * classes, (r + 1) * classes);
      return r % 2 === 0 ? row.indexOf(big) : row.indexOf(-big);
    });
    expect(labels.every((l) => l >= 0)).toBe(true);
    const expected = refSoftmaxCrossEntropy(logits, labels, classes);
    const logitsT = engine.tensor(Float32Array.from(logits), [rows, classes]);
    const out = await softmaxCrossEntropy(logitsT, labels);
    const grad = await out.grad.read();
    const loss = await out.value();
    expect(grad.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(big / 2);
    expect(expected.correct).toBe(rows / 2);
    expect(Math.abs(loss - expected.loss)).toBeLessThan(1e-5 * expected.loss);
    expect(maxAbsDiff(grad, expected.grad)).toBeLessThan(1e-7);
    expect((await out.correct.read())[0]).toBe(expected.correct);
    out.dispose();
    logitsT.dispose();
  });

  it('takes u32 labels from a GPU buffer; a label ≥ classes ignores its row', async () => {
    const rows = 7;
    const classes = 5;
    const { logits, labels } = problem(12, rows, classes, 3);
    labels[3] = 99;
    const buffer = engine.device.createBuffer({ size: rows * 4, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST });
    engine.device.queue.writeBuffer(buffer, 0, labels);
    const expected = refSoftmaxCrossEntropy(logits, labels, classes);
    const logitsT = engine.tensor(Float32Array.from(logits), [rows, classes]);
    const out = await softmaxCrossEntropy(logitsT, buffer);
    const grad = await out.grad.read();
    expect(Array.from(grad.subarray(3 * classes, 4 * classes))).toEqual([0, 0, 0, 0, 0]);
    expect(maxAbsDiff(grad, expected.grad)).toBeLessThan(1e-7);
    expect(Math.abs((await out.value()) - expected.loss)).toBeLessThan(1e-6);
    expect((await out.correct.read())[0]).toBe(expected.correct);
    out.dispose();
    logitsT.dispose();
    buffer.destroy();
  });

  it('is deterministic: the same inputs give the same bits', async () => {
    const rows = 520;
    const classes = 10;
    const { logits, labels } = problem(21, rows, classes, 4);
    const logitsT = engine.tensor(Float32Array.from(logits), [rows, classes]);
    const a = await softmaxCrossEntropy(logitsT, labels);
    const b = await softmaxCrossEntropy(logitsT, labels);
    expect(await b.value()).toBe(await a.value());
    expect(Array.from(await b.grad.read())).toEqual(Array.from(await a.grad.read()));
    a.dispose();
    b.dispose();
    logitsT.dispose();
  });

  it('rejects bad labels and logits with ShapeError', async () => {
    const logitsT = engine.tensor(new Float32Array(6), [2, 3]);
    await expect(softmaxCrossEntropy(logitsT, [0])).rejects.toThrow(ShapeError);
    await expect(softmaxCrossEntropy(logitsT, [0, 3])).rejects.toThrow(ShapeError);
    await expect(softmaxCrossEntropy(logitsT, [0, 1.5])).rejects.toThrow(ShapeError);
    await expect(softmaxCrossEntropy(logitsT, [0, -1])).rejects.toThrow(ShapeError);
    const small = engine.device.createBuffer({ size: 4, usage: BufferUsage.STORAGE });
    await expect(softmaxCrossEntropy(logitsT, small)).rejects.toThrow(ShapeError);
    small.destroy();
    await expect(softmaxCrossEntropy(engine.tensor([1, 2], [2, 1]), [0, 0])).rejects.toThrow(ShapeError);
    logitsT.dispose();
  });
});
