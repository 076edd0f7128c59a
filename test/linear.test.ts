// The dense layer y = x·W + b on the GPU (shaders/dense*.wgsl, the dense-product library) against the float64 oracle
// (src/reference/linear.ts), forward and every adjoint, at sizes that are not multiples of the
// kernels' 4/16/64 tiles; the oracle's adjoint checked by central finite differences.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linear, NonFiniteError, ShapeError, type Engine, type Tensor } from '../src';
import { refLinearForward, refLinearVjp, type RefLinear } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** A random layer and batch, float32-representable so the GPU sees the oracle's exact inputs. */
function problem(seed: number, rows: number, inF: number, outF: number): { ref: RefLinear; x: Float64Array; dy: Float64Array } {
  const random = rng(seed);
  const f32 = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));
  return {
    ref: { inFeatures: inF, outFeatures: outF, W: f32(randomArray(random, inF * outF, 1 / Math.sqrt(inF))), b: f32(randomArray(random, outF, 0.5)) },
    x: f32(randomArray(random, rows * inF, 1)),
    dy: f32(randomArray(random, rows * outF, 1)),
  };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const U32 = 2 ** -24;

/**
 * Elementwise float32 check: |got − expected| ≤ (terms + 2)·u·bound, the worst-case rounding of
 * a sum of `terms` products whose absolute values add up to `bound` (u = 2⁻²⁴). A wrong index or
 * a missed tile is off by O(1).
 */
function expectClose(got: Float32Array, expected: Float64Array, bound: Float64Array, terms: number): void {
  expect(got.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const allowed = (terms + 2) * U32 * bound[i] + 1e-30;
    worst = Math.max(worst, Math.abs(got[i] - expected[i]) / allowed);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

const absArray = (a: Float64Array): Float64Array => a.map(Math.abs);

describe('reference dense layer', () => {
  it('its VJP matches central finite differences of ⟨dy, y(x, W, b)⟩', () => {
    const { ref, x, dy } = problem(3, 3, 5, 4);
    const objective = (layer: RefLinear, input: Float64Array): number =>
      refLinearForward(layer, input).reduce((s, v, i) => s + v * dy[i], 0);
    const grads = refLinearVjp(ref, x, dy);
    const h = 1e-5;
    const central = (bump: (delta: number) => number): number => (bump(h) - bump(-h)) / (2 * h);
    const fdX = Float64Array.from(x, (_, i) => central((delta) => {
      const xx = Float64Array.from(x);
      xx[i] += delta;
      return objective(ref, xx);
    }));
    const fdW = Float64Array.from(ref.W, (_, i) => central((delta) => {
      const W = Float64Array.from(ref.W);
      W[i] += delta;
      return objective({ ...ref, W }, x);
    }));
    const fdB = Float64Array.from(ref.b, (_, i) => central((delta) => {
      const b = Float64Array.from(ref.b);
      b[i] += delta;
      return objective({ ...ref, b }, x);
    }));
    expect(maxAbsDiff(grads.dx, fdX)).toBeLessThan(1e-9);
    expect(maxAbsDiff(grads.dW, fdW)).toBeLessThan(1e-9);
    expect(maxAbsDiff(grads.db, fdB)).toBeLessThan(1e-9);
    // Not vacuous: the gradients are far from zero.
    expect(maxAbs(grads.dW)).toBeGreaterThan(0.1);
  });
});

// [rows, in, out]: MNIST's 784 input, tiny and odd sizes, and sizes that cross a 64-wide tile.
const CASES: [number, number, number][] = [
  [1, 784, 10],
  [5, 784, 64],
  [33, 7, 17],
  [33, 784, 17],
  [5, 7, 10],
  [70, 65, 66],
];

describe('GPU dense layer', () => {
  it.each(CASES)('rows %i, in %i, out %i: forward, dx, dW, db match the float64 reference', async (rows, inF, outF) => {
    const { ref, x, dy } = problem(rows * 1000 + inF + outF, rows, inF, outF);
    const layer = linear(engine, { weight: Float32Array.from(ref.W), bias: Float32Array.from(ref.b) });
    expect([layer.inFeatures, layer.outFeatures]).toEqual([inF, outF]);
    const xT = engine.tensor(Float32Array.from(x), [rows, inF]);
    const dyT = engine.tensor(Float32Array.from(dy), [rows, outF]);
    const y = await layer.forward(xT);
    const grads = await layer.backward(xT, dyT, { inputGrad: true });
    expect(y.shape).toEqual([rows, outF]);
    expect(grads.dx?.shape).toEqual([rows, inF]);
    const expectedY = refLinearForward(ref, x);
    const expected = refLinearVjp(ref, x, dy);
    const got = { y: await y.read(), dx: await (grads.dx as Tensor).read(), dW: await grads.weight.read(), db: await grads.bias.read() };
    // The same sums over absolute values bound the rounding.
    const absRef: RefLinear = { ...ref, W: absArray(ref.W), b: absArray(ref.b) };
    const bounds = refLinearVjp(absRef, absArray(x), absArray(dy));
    expectClose(got.y, expectedY, refLinearForward(absRef, absArray(x)), inF);
    expectClose(got.dx, expected.dx, bounds.dx, outF);
    expectClose(got.dW, expected.dW, bounds.dW, rows);
    expectClose(got.db, expected.db, bounds.db, rows);
    // The outputs were all written (no element left at a pooled buffer's old value).
    expect(maxAbs(expected.dW)).toBeGreaterThan(0.05);
    for (const t of [xT, dyT, y, grads.dx as Tensor, grads.weight, grads.bias]) t.dispose();
  });

  it('encodes into a caller-owned pass, computes only the gradients given, and is deterministic', async () => {
    const rows = 9;
    const inF = 20;
    const outF = 3;
    const { ref, x, dy } = problem(5, rows, inF, outF);
    const layer = linear(engine, { weight: engine.tensor(Float32Array.from(ref.W), [inF, outF]), bias: engine.tensor(Float32Array.from(ref.b), [outF]) });
    await layer.prepare();
    const xT = engine.tensor(Float32Array.from(x), [rows, inF]);
    const dyT = engine.tensor(Float32Array.from(dy), [rows, outF]);
    const sentinel = new Float32Array(rows * inF).fill(7);
    const dx = engine.tensor(sentinel, [rows, inF]);
    const dW1 = engine.zeros([inF, outF]);
    const dW2 = engine.zeros([inF, outF]);
    const db = engine.zeros([outF]);
    const y = engine.zeros([rows, outF]);
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    layer.encodeForward(pass, xT, y, rows);
    layer.encodeBackward(pass, xT, dyT, { weight: dW1, bias: db }, rows);
    layer.encodeBackward(pass, xT.buffer, dyT.buffer, { weight: dW2.buffer }, rows);
    pass.end();
    engine.device.queue.submit([encoder.finish()]);
    expect(maxAbsDiff(await y.read(), refLinearForward(ref, x))).toBeLessThan(1e-5);
    const first = await dW1.read();
    expect(maxAbsDiff(first, refLinearVjp(ref, x, dy).dW)).toBeLessThan(1e-5);
    expect(Array.from(await dW2.read())).toEqual(Array.from(first));
    // dx was not asked for, so it was not touched.
    expect(Array.from(await dx.read())).toEqual(Array.from(sentinel));
    for (const t of [xT, dyT, dx, dW1, dW2, db, y]) t.dispose();
  });

  it('uses W and b tensors in place: writing them changes the next forward', async () => {
    const W = engine.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    const b = engine.tensor([0.5, -0.5], [2]);
    const layer = linear(engine, { weight: W, bias: b });
    const x = engine.tensor([1, 1, 1], [1, 3]);
    expect(Array.from(await (await layer.forward(x)).read())).toEqual([9.5, 11.5]);
    engine.device.queue.writeBuffer(W.buffer, 0, new Float32Array([0, 0, 0, 0, 1, 1]));
    expect(Array.from(await (await layer.forward(x)).read())).toEqual([1.5, 0.5]);
  });

  it('rejects bad parameters and inputs with typed errors', async () => {
    expect(() => linear(engine, { weight: [1, 2, 3], bias: [1, 2] })).toThrow(ShapeError);
    expect(() => linear(engine, { weight: [1, NaN], bias: [1, 2] })).toThrow(NonFiniteError);
    expect(() => linear(engine, { weight: engine.tensor([1, 2, 3, 4, 5, 6], [2, 3]), bias: [1, 2] })).toThrow(ShapeError);
    const layer = linear(engine, { weight: [1, 2, 3, 4, 5, 6], bias: [1, 2] });
    expect([layer.inFeatures, layer.outFeatures]).toEqual([3, 2]);
    await expect(layer.forward(engine.tensor([1, 2], [1, 2]))).rejects.toThrow(ShapeError);
    const x = engine.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    await expect(layer.backward(x, engine.tensor([1, 2], [1, 2]))).rejects.toThrow(ShapeError);
    const fresh = linear(engine, { weight: [1, 2], bias: [1, 2] });
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    expect(() => fresh.encodeForward(pass, x, x, 1)).toThrow(/prepare/);
    await fresh.prepare();
    expect(() => fresh.encodeForward(pass, x, x, 0)).toThrow(ShapeError);
    pass.end();
  });
});
