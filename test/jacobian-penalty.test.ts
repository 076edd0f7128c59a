// jacobianPenalty: the Hutchinson estimate of ‖J_f‖_F² / n and its parameter gradient from central
// differences of the layer's own forward and VJP, against the float64 reference (the exact
// estimate with the same ±1 vectors and its exact gradient), the exact Frobenius norm (the
// estimator's expectation), a defineLayer layer with a closed form, a dropout block in inference
// mode, no readbacks, and typed errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DisposedError,
  JACOBIAN_PENALTY_H,
  OptionError,
  Qd,
  ShapeError,
  add,
  defineLayer,
  implicitBlock,
  jacobianPenalty,
  linear,
  sequential,
  tanh,
  type Engine,
} from '../src';
import { refBlockJacobianFrobenius, refBlockJacobianPenalty, refBlockJacobianRows, refRademacher, type RefBlock } from '../src/reference';
import { createTestEngine, f32, maxAbsDiff, randomArray, relError, rng } from './helpers/engine';
import { expectTyped, rejection } from './helpers/errors';
import { SCALED_TANH_FORWARD, scaledTanhAdjoint } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** A random tanh block (float32 values) with a state and injection of `rows` rows. */
function randomCase(seed: number, d: number, rows: number, scale: number) {
  const random = rng(seed);
  const block: RefBlock = { d, w: f32(randomArray(random, d * d, scale / Math.sqrt(d))), b: f32(randomArray(random, d, 0.3)) };
  const qd = f32(randomArray(random, rows * d, 1.2));
  const u = f32(randomArray(random, rows * d, 0.8));
  return { block, qd, u };
}

describe('the float64 reference', () => {
  it('averaged over all 2^n sign vectors, the estimate is ‖J‖_F² / n exactly (Hutchinson), from the Jacobian itself', () => {
    const { block, qd, u } = randomCase(3, 3, 2, 1.1);
    const n = u.length;
    const all = Array.from({ length: 2 ** n }, (_, m) => Float64Array.from({ length: n }, (_, i) => ((m >> i) & 1 ? 1 : -1)));
    // ‖J‖_F² from the dense per-row Jacobians (src/reference/stability.ts), a separate computation.
    const frobenius = refBlockJacobianRows(block, u, qd).reduce((sum, J) => sum + J.reduce((s, x) => s + x * x, 0), 0) / n;
    expect(refBlockJacobianFrobenius(block, u, qd)).toBeCloseTo(frobenius, 12);
    expect(refBlockJacobianPenalty(block, u, qd, all).estimate).toBeCloseTo(frobenius, 12);
  });

  it('its gradient is the derivative of its estimate (central differences in float64)', () => {
    const { block, qd, u } = randomCase(4, 4, 3, 1.3);
    const vs = [0, 1].map((s) => refRademacher(9, s, u.length));
    const weight = 0.7;
    const exact = refBlockJacobianPenalty(block, u, qd, vs, weight);
    const e = 1e-6;
    const numeric = (perturb: (delta: number) => { block: RefBlock; qd: Float64Array }): number => {
      const [p, m] = [perturb(e), perturb(-e)];
      return (weight * (refBlockJacobianPenalty(p.block, u, p.qd, vs).estimate - refBlockJacobianPenalty(m.block, u, m.qd, vs).estimate)) / (2 * e);
    };
    const bump = (a: Float64Array, i: number, delta: number) => a.map((x, k) => (k === i ? x + delta : x));
    for (const i of [0, 5, 15]) expect(numeric((dx) => ({ block: { ...block, w: bump(block.w, i, dx) }, qd }))).toBeCloseTo(exact.w[i], 7);
    for (const i of [0, 3]) expect(numeric((dx) => ({ block: { ...block, b: bump(block.b, i, dx) }, qd }))).toBeCloseTo(exact.b[i], 7);
    for (const i of [1, 10]) expect(numeric((dx) => ({ block, qd: bump(qd, i, dx) }))).toBeCloseTo(exact.Qd[i], 7);
  });
});

describe('jacobianPenalty on the GPU', () => {
  it('matches the exact estimate and gradient with the same vectors (batch [4, 16], 3 samples), with no readback', async () => {
    const [d, rows, samples, seed, weight] = [16, 4, 3, 11, 0.25];
    const { block, qd, u } = randomCase(7, d, rows, 1.4);
    const f = implicitBlock(engine, { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) });
    const [qdT, uT] = [engine.tensor(Float32Array.from(qd), [rows, d]), engine.tensor(Float32Array.from(u), [rows, d])];
    const vs = Array.from({ length: samples }, (_, s) => refRademacher(seed, s, rows * d));
    const expected = refBlockJacobianPenalty(block, u, qd, vs, weight);
    const before = engine.counters.readbacks;
    const penalty = await jacobianPenalty(f, qdT, uT, { samples, seed, weight });
    expect(engine.counters.readbacks).toBe(before);
    expect(penalty.estimate.shape).toEqual([1]);
    expect(Object.keys(penalty.grads).sort()).toEqual(['Qd', 'bias', 'weight']);
    expect(penalty.grads.Qd.shape).toEqual([rows, d]);
    const [estimate] = await penalty.estimate.read();
    // The central difference's error at the default h, measured ≤ 6e-5 (docs/architecture.md).
    expect(Math.abs(estimate - expected.estimate) / expected.estimate).toBeLessThan(1e-4);
    expect(relError(await penalty.grads.weight.read(), expected.w)).toBeLessThan(3e-4);
    expect(relError(await penalty.grads.bias.read(), expected.b)).toBeLessThan(3e-4);
    expect(relError(await penalty.grads.Qd.read(), expected.Qd)).toBeLessThan(3e-4);

    // The same seed gives the same bits; another seed other vectors.
    const again = await jacobianPenalty(f, qdT, uT, { samples, seed, weight });
    expect(await again.estimate.read()).toEqual(Float32Array.of(estimate));
    expect(await again.grads.weight.read()).toEqual(await penalty.grads.weight.read());
    const other = await jacobianPenalty(f, qdT, uT, { samples, seed: seed + 1, weight });
    const otherExpected = refBlockJacobianPenalty(block, u, qd, [0, 1, 2].map((s) => refRademacher(seed + 1, s, rows * d)), weight);
    expect(Math.abs((await other.estimate.read())[0] - otherExpected.estimate) / otherExpected.estimate).toBeLessThan(1e-4);
    expect(otherExpected.estimate).not.toBeCloseTo(expected.estimate, 3);

    // A larger h trades rounding for truncation: still close, less so (the error is O(h²)).
    const coarse = await jacobianPenalty(f, qdT, uT, { samples, seed, weight, h: 0.1 });
    const coarseError = relError(await coarse.grads.weight.read(), expected.w);
    expect(coarseError).toBeLessThan(0.05);
    expect(coarseError).toBeGreaterThan(relError(await penalty.grads.weight.read(), expected.w));
    for (const p of [penalty, again, other, coarse]) p.dispose();
    expect(penalty.estimate.disposed && penalty.grads.weight.disposed).toBe(true);
    // A call and its dispose() leave nothing in use (scratch buffers go back to the pool).
    const inUse = (): number => engine.memory.allocatedBytes - engine.memory.pooledBytes;
    const held = inUse();
    (await jacobianPenalty(f, qdT, uT, { samples, seed, weight })).dispose();
    expect(inUse()).toBe(held);
    for (const t of [qdT, uT]) t.dispose();
    f.dispose();
  });

  it('an unbatched state; the estimate is unbiased: many samples approach the exact ‖J‖_F² / n', async () => {
    const [d, samples] = [8, 256];
    const { block, qd, u } = randomCase(12, d, 1, 1.2);
    const f = implicitBlock(engine, { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) });
    const [qdT, uT] = [engine.tensor(Float32Array.from(qd), [d]), engine.tensor(Float32Array.from(u), [d])];
    const penalty = await jacobianPenalty(f, qdT, uT, { samples, seed: 3 });
    expect(penalty.grads.Qd.shape).toEqual([d]);
    const [estimate] = await penalty.estimate.read();
    const exact = refBlockJacobianFrobenius(block, u, qd);
    // The spread of one-sample estimates (the reference's, with the same vectors) bounds the mean's.
    const single = Array.from({ length: samples }, (_, s) => refBlockJacobianPenalty(block, u, qd, [refRademacher(3, s, d)]).estimate);
    const mean = single.reduce((a, b) => a + b, 0) / samples;
    const sd = Math.sqrt(single.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples - 1));
    expect(sd).toBeGreaterThan(0);
    expect(Math.abs(estimate - mean) / mean).toBeLessThan(1e-4);
    expect(Math.abs(estimate - exact)).toBeLessThan((4 * sd) / Math.sqrt(samples));
    penalty.dispose();
    for (const t of [qdT, uT]) t.dispose();
    f.dispose();
  });

  it('a defineLayer layer (closed form), added into given gradients; the composed block and a dropout block in inference mode agree', async () => {
    const [d, rows, weight] = [6, 3, 0.5];
    const random = rng(21);
    const a = f32(randomArray(random, d, 1.5));
    const u = f32(randomArray(random, rows * d, 0.9));
    const qd = f32(randomArray(random, rows * d, 1));
    const f = await defineLayer(engine, {
      featureSize: d,
      params: { a: Float32Array.from(a) },
      forward: SCALED_TANH_FORWARD,
      adjoint: scaledTanhAdjoint(),
    });
    // J is diagonal, (a ⊙ (1 − y²)): ‖Jv‖² is the same for every ±1 vector, so the estimate is exact,
    // P = Σ (a s)² / n with s = 1 − y², ∂P/∂a_k = Σ_rows 2 a s² (1 − 2 a y u) / n, ∂P/∂Qd = −4 a² y s² / n.
    const n = rows * d;
    const y = Float64Array.from(u, (x, i) => Math.tanh(a[i % d] * x + qd[i]));
    const s = y.map((v) => 1 - v * v);
    const exact = s.reduce((sum, si, i) => sum + (a[i % d] * si) ** 2, 0) / n;
    const da = new Float64Array(d);
    s.forEach((si, i) => (da[i % d] += (weight * 2 * a[i % d] * si * si * (1 - 2 * a[i % d] * y[i] * u[i])) / n));
    const dQd = s.map((si, i) => (weight * -4 * a[i % d] ** 2 * y[i] * si * si) / n);
    const [qdT, uT] = [engine.tensor(Float32Array.from(qd), [rows, d]), engine.tensor(Float32Array.from(u), [rows, d])];
    // addTo: the gradients are added to what the tensors hold.
    const into = { a: engine.tensor(new Float32Array(d).fill(1), [d]), Qd: engine.tensor(new Float32Array(n).fill(-2), [rows, d]) };
    const penalty = await jacobianPenalty(f, qdT, uT, { weight, addTo: into, samples: 2 });
    expect(penalty.grads.a).toBe(into.a);
    expect(Math.abs((await penalty.estimate.read())[0] - exact) / exact).toBeLessThan(1e-4);
    expect(maxAbsDiff(await into.a.read(), da.map((g) => 1 + g))).toBeLessThan(2e-5);
    expect(maxAbsDiff(await into.Qd.read(), dQd.map((g) => g - 2))).toBeLessThan(2e-5);
    penalty.dispose();
    // dispose() leaves addTo's tensors to their owner.
    expect(into.a.disposed).toBe(false);

    // The tanh block three ways: plain, composed of stages, with dropout (inference mode: no noise).
    const { block, qd: bq, u: bu } = randomCase(5, 8, 2, 1.2);
    const params = { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) };
    const layers = [implicitBlock(engine, params), sequential(linear(engine, params), add(Qd), tanh()), implicitBlock(engine, { ...params, dropout: 0.5 })];
    const [bqT, buT] = [engine.tensor(Float32Array.from(bq), [2, 8]), engine.tensor(Float32Array.from(bu), [2, 8])];
    const results = await Promise.all(layers.map((layer) => jacobianPenalty(layer, bqT, buT, { seed: 4 })));
    const expected = refBlockJacobianPenalty(block, bu, bq, [refRademacher(4, 0, 16)]);
    // sequential names its parameters by stage: '0.weight'.
    for (const [r, name] of results.map((result, i) => [result, i === 1 ? '0.weight' : 'weight'] as const)) {
      expect(Math.abs((await r.estimate.read())[0] - expected.estimate) / expected.estimate).toBeLessThan(1e-4);
      expect(relError(await r.grads[name].read(), expected.w)).toBeLessThan(3e-4);
      r.dispose();
    }
    for (const t of [qdT, uT, bqT, buT, into.a, into.Qd]) t.dispose();
    for (const layer of layers) layer.dispose();
  });

  it('bad arguments are typed errors naming them', async () => {
    const d = 4;
    const f = implicitBlock(engine, { weight: new Float32Array(d * d), bias: new Float32Array(d) });
    const qd = engine.tensor(new Float32Array(2 * d), [2, d]);
    const u = engine.tensor(new Float32Array(2 * d), [2, d]);
    expect(JACOBIAN_PENALTY_H).toBeGreaterThan(0);
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { samples: 0 })), OptionError, 'options.samples');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { samples: 1.5 })), OptionError, 'options.samples');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { h: 0 })), OptionError, 'options.h');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { h: Number.NaN })), OptionError, 'options.h');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { weight: -1 })), OptionError, 'options.weight');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { seed: -1 })), OptionError, 'options.seed');
    const unknown = await rejection(jacobianPenalty(f, qd, u, { sample: 3 } as never));
    expectTyped(unknown, OptionError, 'options.sample');
    expect((unknown as Error).message).toMatch(/did you mean 'samples'/);
    expectTyped(await rejection(jacobianPenalty(f, qd, u, 3 as never)), OptionError, 'options');
    expectTyped(await rejection(jacobianPenalty({} as never, qd, u)), OptionError, 'f');
    expectTyped(await rejection(jacobianPenalty(f, qd, engine.tensor(new Float32Array(d), [d]))), ShapeError, 'uStar');
    expectTyped(await rejection(jacobianPenalty(f, engine.tensor(new Float32Array(6), [2, 3]), u)), ShapeError, 'Qd');
    expectTyped(await rejection(jacobianPenalty(f, qd, new Float32Array(2 * d) as never)), ShapeError, 'uStar');
    const grads = { weight: engine.zeros([d, d]), bias: engine.zeros([d]), Qd: engine.zeros([2, d]) };
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { addTo: { weight: grads.weight, bias: grads.bias } as never })), OptionError, 'options.addTo.Qd');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { addTo: { ...grads, b: grads.bias } as never })), OptionError, 'options.addTo.b');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { addTo: { ...grads, bias: engine.zeros([d + 1]) } })), ShapeError, 'options.addTo.bias');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { addTo: { ...grads, weight: f.params.weight } })), ShapeError, 'options.addTo.weight');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { addTo: { ...grads, Qd: u } })), ShapeError, 'options.addTo.Qd');
    expectTyped(await rejection(jacobianPenalty(f, qd, u, { addTo: { ...grads, bias: 1 as never } })), ShapeError, 'options.addTo.bias');
    const gone = engine.tensor(new Float32Array(2 * d), [2, d]);
    gone.dispose();
    expectTyped(await rejection(jacobianPenalty(f, qd, gone)), DisposedError, 'uStar');
    // A zero Jacobian has penalty 0 and zero gradients.
    const zero = await jacobianPenalty(f, qd, u, { samples: 2 });
    expect((await zero.estimate.read())[0]).toBe(0);
    expect(maxAbsDiff(await zero.grads.weight.read(), new Float32Array(d * d))).toBe(0);
    zero.dispose();
    for (const t of [qd, u, ...Object.values(grads)]) t.dispose();
    f.dispose();
  });
});
