// stats.status (why a solve stopped) and the stall rule (stallSteps), on constructed cases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError, Qd, add, anderson, broyden, ift, implicitBlock, linear, picard, sequential, type Engine } from '../src';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { expectTyped, rejection } from './helpers/errors';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const d = 6;
const identity = (scale: number) => Float32Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? scale : 0));

describe('stats.status', () => {
  it("'converged' on a contraction, 'maxDepth' with eps 0, for every solver", async () => {
    const random = rng(2);
    const f = implicitBlock(engine, { weight: Float32Array.from(randomArray(random, d * d, 0.3 / Math.sqrt(d))), bias: new Float32Array(d) });
    const q = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    for (const solver of [picard, anderson, broyden]) {
      const done = await solver(f, q, { eps: 1e-4, maxDepth: 100 });
      expect(done.stats.status, solver.name).toBe('converged');
      done.dispose();
      const capped = await solver(f, q, { eps: 0, maxDepth: 7 });
      expect(capped.stats.status, solver.name).toBe('maxDepth');
      expect(capped.stats.nstep).toBe(7);
      capped.dispose();
    }
    q.dispose();
    f.dispose();
  });

  it("'nonFinite' when the iterates overflow", async () => {
    // f(u) = 1e30·u + Qd: the second iterate is already infinite.
    const f = sequential(linear(engine, { weight: identity(1e30), bias: new Float32Array(d) }), add(Qd));
    const q = engine.tensor(new Float32Array(d).fill(1e10), [d]);
    const r = await picard(f, q, { eps: 1e-6, maxDepth: 50, fused: false });
    expect(r.stats.status).toBe('nonFinite');
    expect(r.stats.nonFinite).toBe(true);
    r.dispose();
    q.dispose();
    f.dispose();
  });
});

describe('the stall rule (stallSteps)', () => {
  // u ← tanh(−2u): 0 is a repelling fixed point, so Picard from 0.1 settles into the 2-cycle ±0.957
  // whose residual never improves.
  const cycle = () => implicitBlock(engine, { weight: identity(-2), bias: new Float32Array(d) });

  it("stops after stallSteps iterations without improvement ('stalled'), on the fused path and the step-by-step one", async () => {
    const f = cycle();
    const q = engine.tensor(new Float32Array(d), [d]);
    const u0 = engine.tensor(new Float32Array(d).fill(0.1), [d]);
    for (const fused of [true, false]) {
      const free = await picard(f, q, { u0, eps: 1e-6, maxDepth: 200, fused });
      expect(free.stats.status, `fused ${fused}`).toBe('maxDepth');
      expect(free.stats.nstep).toBe(200);
      const bestStep = free.stats.nstep;
      free.dispose();
      const stalled = await picard(f, q, { u0, eps: 1e-6, maxDepth: 200, stallSteps: 12, fused, trace: true });
      expect(stalled.stats.status, `fused ${fused}`).toBe('stalled');
      expect(stalled.stats.converged).toBe(false);
      // From the trace (entry i is the measurement at step i, 0 the start): the last step that
      // lowered the best residual (step 1 starts the count when none did), then 12 steps without.
      const abs = stalled.stats.trace?.abs ?? [];
      let best = abs[0];
      let lastImproved = 1;
      abs.forEach((value, i) => {
        if (i > 0 && value < best) {
          best = value;
          lastImproved = Math.max(1, i);
        }
      });
      expect(abs.length).toBeGreaterThan(12);
      expect(stalled.stats.nstep).toBe(lastImproved + 12);
      expect(stalled.stats.nstep).toBeLessThan(bestStep);
      stalled.dispose();
    }
    for (const t of [q, u0]) t.dispose();
    f.dispose();
  });

  it('stallSteps: 0 is off; a bad value is an OptionError naming it', async () => {
    const f = cycle();
    const q = engine.tensor(new Float32Array(d), [d]);
    for (const bad of [-1, 1.5, 'a', 2 ** 21]) {
      expectTyped(await rejection(picard(f, q, { stallSteps: bad as number })), OptionError, 'options.stallSteps');
    }
    q.dispose();
    f.dispose();
  });

  it("IFT's adjoint solve reports its status in backwardStats", async () => {
    const random = rng(4);
    const f = implicitBlock(engine, { weight: Float32Array.from(randomArray(random, d * d, 0.3 / Math.sqrt(d))), bias: new Float32Array(d) });
    const q = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    const result = await ift(f, q, { solver: anderson, eps: 1e-5 });
    const grads = await result.backward(engine.tensor(new Float32Array(d).fill(1), [d]));
    expect(result.stats.status).toBe('converged');
    expect(result.backwardStats?.status).toBe('converged');
    for (const g of Object.values(grads)) g.dispose();
    result.dispose();
    q.dispose();
    f.dispose();
  });
});
