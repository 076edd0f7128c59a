// spectralRadius: the spectral radius of J_f at the fixed point by power iteration on the GPU,
// against the float64 reference (Gelfand's formula on the dense Jacobian) and the golden values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError, Qd, ShapeError, add, implicitBlock, linear, sequential, spectralRadius, tanh, type Engine } from '../src';
import { refBlockJacobianRows, refSpectralRadius, type RefBlock } from '../src/reference';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { expectTyped, rejection } from './helpers/errors';
import { loadGolden } from './helpers/golden';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** ρ of the tanh block at (u, qd): the largest over the batch rows' Jacobians. */
function refBlockRadius(block: RefBlock, u: Float64Array, qd: Float64Array): number {
  return Math.max(...refBlockJacobianRows(block, u, qd).map((J) => refSpectralRadius(J, block.d)));
}

describe('the float64 reference', () => {
  it('gives the known radius of a diagonal matrix and of a rotation-scaling (complex eigenvalues)', () => {
    expect(refSpectralRadius(Float64Array.from([0.5, 0, 0, 0, -0.9, 0, 0, 0, 0.3]), 3)).toBeCloseTo(0.9, 3);
    // [[a, −b], [b, a]] has eigenvalues a ± ib.
    expect(refSpectralRadius(Float64Array.from([0.6, -0.7, 0.7, 0.6]), 2)).toBeCloseTo(Math.hypot(0.6, 0.7), 3);
    expect(refSpectralRadius(new Float64Array(4), 2)).toBe(0);
  });

  it("matches the original's spectral_radius_J on the golden cases", () => {
    for (const c of loadGolden()) {
      const grad = c.grads.ift_exact;
      if (grad?.spectralRadius === undefined || !grad.uStar) continue;
      const radius = refBlockRadius({ d: c.d, w: c.weight, b: c.bias }, grad.uStar, c.Qd);
      expect(Math.abs(radius - grad.spectralRadius) / grad.spectralRadius, c.name).toBeLessThan(1e-3);
    }
  });
});

describe('spectralRadius on the GPU', () => {
  it('matches the golden spectral_radius_J (a contraction, and a non-contractive case)', async () => {
    let checked = 0;
    for (const c of loadGolden()) {
      const grad = c.grads.ift_exact;
      if (grad?.spectralRadius === undefined || !grad.uStar) continue;
      const shape = c.batch === 0 ? [c.d] : [c.batch, c.d];
      const f = implicitBlock(engine, { weight: Float32Array.from(c.weight), bias: Float32Array.from(c.bias) });
      const [qd, u] = [engine.tensor(Float32Array.from(c.Qd), shape), engine.tensor(Float32Array.from(grad.uStar), shape)];
      const rho = await spectralRadius(f, qd, u, { iterations: 400 });
      expect(rho.shape).toEqual([1]);
      const [value] = await rho.read();
      expect(Math.abs(value - grad.spectralRadius) / grad.spectralRadius, c.name).toBeLessThan(0.02);
      for (const t of [qd, u, rho]) t.dispose();
      f.dispose();
      checked++;
    }
    expect(checked).toBe(2);
  });

  it('matches the reference on a random block, and a composed sequential gives the same estimate', async () => {
    const random = rng(9);
    const [d, batch] = [12, 3];
    const w = Float32Array.from(randomArray(random, d * d, 1.2 / Math.sqrt(d)));
    const b = Float32Array.from(randomArray(random, d, 0.2));
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const u = Float32Array.from(randomArray(random, batch * d, 0.8));
    const expected = refBlockRadius({ d, w: Float64Array.from(w), b: Float64Array.from(b) }, Float64Array.from(u), Float64Array.from(qd));
    const [qdT, uT] = [engine.tensor(qd, [batch, d]), engine.tensor(u, [batch, d])];
    const block = implicitBlock(engine, { weight: w, bias: b });
    const composed = sequential(linear(engine, { weight: w, bias: b }), add(Qd), tanh());
    const before = engine.counters.readbacks;
    const estimates = [await spectralRadius(block, qdT, uT, { iterations: 400 }), await spectralRadius(composed, qdT, uT, { iterations: 400 })];
    // No readback until the caller reads the estimate.
    expect(engine.counters.readbacks).toBe(before);
    const [fromBlock, fromComposed] = [(await estimates[0].read())[0], (await estimates[1].read())[0]];
    expect(Math.abs(fromBlock - expected) / expected).toBeLessThan(0.02);
    expect(fromComposed).toBe(fromBlock);
    // The same seed gives the same bits; another seed another start, the same radius.
    const again = (await (await spectralRadius(block, qdT, uT, { iterations: 400 })).read())[0];
    expect(again).toBe(fromBlock);
    const other = (await (await spectralRadius(block, qdT, uT, { iterations: 400, seed: 7 })).read())[0];
    expect(Math.abs(other - expected) / expected).toBeLessThan(0.02);
    for (const t of [qdT, uT, ...estimates]) t.dispose();
    block.dispose();
    composed.dispose();
  });

  it('bad arguments are typed errors naming them', async () => {
    const d = 4;
    const f = implicitBlock(engine, { weight: new Float32Array(d * d), bias: new Float32Array(d) });
    const qd = engine.tensor(new Float32Array(d), [d]);
    const u = engine.tensor(new Float32Array(d), [d]);
    expectTyped(await rejection(spectralRadius(f, qd, u, { iterations: 1 })), OptionError, 'options.iterations');
    expectTyped(await rejection(spectralRadius(f, qd, u, { iterations: 10, steps: 3 } as never)), OptionError, 'options.steps');
    expectTyped(await rejection(spectralRadius(f, qd, engine.tensor(new Float32Array(2 * d), [2, d]))), ShapeError, 'uStar');
    expectTyped(await rejection(spectralRadius({} as never, qd, u)), OptionError, 'f');
    // A zero Jacobian has radius 0.
    expect((await (await spectralRadius(f, qd, u, { iterations: 4 })).read())[0]).toBe(0);
    for (const t of [qd, u]) t.dispose();
    f.dispose();
  });
});
