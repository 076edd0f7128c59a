// Training through the implicit layer end to end on the GPU: the original's quickstart training
// loop, translated, and the residency of one train step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broyden, gdeq, mse, type Engine, adam, implicitBlock } from '../src';
import { createTestEngine, randomArray, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** Least-squares slope of ys against their index. */
function slope(ys: number[]): number {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

describe('training', () => {
  it('the quickstart loop (128-wide block, GDEQ + Broyden, Adam 1e-3, loss mean(u*²)) lowers the loss', async () => {
    const random = rng(7);
    const d = 128;
    const w = engine.tensor(Float32Array.from(randomArray(random, d * d, 0.5 / Math.sqrt(d))), [d, d]);
    const b = engine.tensor(Float32Array.from(randomArray(random, d, 0.1)), [d]);
    const f = implicitBlock(engine, { weight: w, bias: b });
    const Qd = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    const opt = adam(engine, [w, b], { lr: 1e-3 });
    const losses: number[] = [];
    // 120 of the original's 200 steps (the suite's time): the fall is the same from the first steps on.
    const STEPS = 120;
    for (let step = 0; step < STEPS; step++) {
      // checkEvery = maxDepth: one submit and one readback per solve (SwiftShader is slow per submit).
      const out = await gdeq(f, Qd, { solver: broyden, eps: 1e-3, maxDepth: 20, checkEvery: 20 });
      const loss = await mse(out.uStar);
      const grads = await out.backward(loss.grad);
      await opt.step([grads.weight, grads.bias]);
      losses.push(await loss.value());
      loss.dispose();
      grads.weight.dispose();
      grads.bias.dispose();
      grads.Qd.dispose();
      out.dispose();
    }
    const head = losses.slice(0, 20).reduce((a, b) => a + b, 0) / 20;
    const tail = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
    expect(tail).toBeLessThan(0.9 * head);
    expect(slope(losses)).toBeLessThan(0);
    // Falls on average in every quarter, not just overall.
    for (let q = 0; q < 4; q++) expect(slope(losses.slice((q * STEPS) / 4, ((q + 1) * STEPS) / 4))).toBeLessThan(0);
  }, 400_000);

  it('a train step at d = 256, batch 64 reads back only the final stats of the solve', async () => {
    const random = rng(11);
    const d = 256;
    const initialW = Float32Array.from(randomArray(random, d * d, 0.5 / Math.sqrt(d)));
    const w = engine.tensor(initialW, [d, d]);
    const b = engine.tensor(Float32Array.from(randomArray(random, d, 0.1)), [d]);
    const f = implicitBlock(engine, { weight: w, bias: b });
    const Qd = engine.tensor(Float32Array.from(randomArray(random, 64 * d, 1)), [64, d]);
    const target = engine.tensor(Float32Array.from(randomArray(random, 64 * d, 0.5)), [64, d]);
    const opt = adam(engine, [w, b], { lr: 1e-3 });
    await opt.prepare();
    const before = engine.readbackCount;
    // checkEvery = maxDepth: the whole solve is one submit, so its final stats are its only readback.
    const out = await gdeq(f, Qd, { solver: broyden, eps: 1e-4, maxDepth: 30, checkEvery: 30 });
    const loss = await mse(out.uStar, target);
    const grads = await out.backward(loss.grad);
    await opt.step([grads.weight, grads.bias]);
    expect(engine.readbackCount - before).toBe(1);
    expect(out.stats.nstep).toBeGreaterThan(0);
    // The step did change the parameters.
    const after = await w.read();
    expect(after.some((v, i) => v !== initialW[i])).toBe(true);
    expect(Number.isFinite(await loss.value())).toBe(true);
  });
});
