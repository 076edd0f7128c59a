// The tanh block's two forward kernels (tiled, split-k) against the float64 reference and each
// other, on random inputs of odd sizes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jfb, picard, type Engine, type ForwardKernelChoice, implicitBlock } from '../src';
import { refBlockForward, refJfb } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, relError, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

describe('tanh block forward kernels', () => {
  const cases: [number, number][] = [[300, 3], [130, 1], [64, 64], [33, 5], [1, 2], [70, 67]];
  it.each(cases)('d = %i, batch %i: every kernel choice gives f(u) of the reference', async (d, batch) => {
    const random = rng(d * 1000 + batch);
    const w = Float32Array.from(randomArray(random, d * d, 0.8 / Math.sqrt(d)));
    const b = Float32Array.from(randomArray(random, d, 0.3));
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const u0 = Float32Array.from(randomArray(random, batch * d, 1));
    // One Picard step from u0 returns uStar = f(u0): the forward kernel's output.
    const expected = refBlockForward({ d, w: Float64Array.from(w), b: Float64Array.from(b) }, Float64Array.from(u0), Float64Array.from(qd));
    const outputs: Float32Array[] = [];
    for (const forwardKernel of ['tiled', 'split-k', 'matmul', 'auto'] as ForwardKernelChoice[]) {
      const f = implicitBlock(engine, { weight: w, bias: b, forwardKernel });
      const r = await picard(f, engine.tensor(qd, [batch, d]), { u0: engine.tensor(u0, [batch, d]), maxDepth: 1, eps: 0, returnFinal: true });
      const u = await r.uStar.read();
      expect(maxAbsDiff(u, expected)).toBeLessThan(2e-6);
      outputs.push(u);
      r.dispose();
    }
    for (const other of outputs.slice(1)) expect(maxAbsDiff(outputs[0], other)).toBeLessThan(2e-6);
  });

  it('rejects an unknown kernel choice', () => {
    expect(() => implicitBlock(engine, { weight: [1], bias: [0], forwardKernel: 'fast' as ForwardKernelChoice })).toThrow(/forwardKernel/);
  });
});

describe('tanh block adjoint kernels', () => {
  it.each([[70, 67], [33, 5]] as [number, number][])('d = %i, batch %i: tiled and matmul δ give the reference gradients', async (d, batch) => {
    const random = rng(d * 7 + batch);
    const w = Float32Array.from(randomArray(random, d * d, 0.8 / Math.sqrt(d)));
    const b = Float32Array.from(randomArray(random, d, 0.3));
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const g = Float32Array.from(randomArray(random, batch * d, 1));
    const results: Float32Array[] = [];
    for (const forwardKernel of ['tiled', 'matmul'] as ForwardKernelChoice[]) {
      const f = implicitBlock(engine, { weight: w, bias: b, forwardKernel });
      const out = await jfb(f, engine.tensor(qd, [batch, d]), { solver: picard, eps: 1e-5 });
      const uPrev = Float64Array.from(await out.uPrev.read());
      const grads = await out.backward(engine.tensor(g, [batch, d]));
      const expected = refJfb({ d, w: Float64Array.from(w), b: Float64Array.from(b) }, Float64Array.from(qd), uPrev, Float64Array.from(g));
      const dQd = await grads.Qd.read();
      expect(relError(dQd, expected.Qd)).toBeLessThan(2e-6);
      expect(relError(await grads.weight.read(), expected.w)).toBeLessThan(2e-6);
      results.push(dQd);
      out.dispose();
    }
    expect(maxAbsDiff(results[0], results[1])).toBeLessThan(1e-5);
  });
});
