// engine.counters: exact dispatch, submit and readback counts of the library's work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError, Qd, add, anderson, broyden, implicitBlock, linear, picard, sequential, tanh, type Engine, type EngineCounters } from '../src';
import { createTestEngine, randomArray, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** What `work` added to the exact counters. */
async function counted(work: () => Promise<unknown>): Promise<Pick<EngineCounters, 'dispatches' | 'submits' | 'readbacks'>> {
  const before = engine.counters;
  await work();
  const after = engine.counters;
  return { dispatches: after.dispatches - before.dispatches, submits: after.submits - before.submits, readbacks: after.readbacks - before.readbacks };
}

const d = 8;
const random = rng(3);
const weight = Float32Array.from(randomArray(random, d * d, 0.3));
const bias = Float32Array.from(randomArray(random, d, 0.1));

describe('engine.counters', () => {
  it('is a snapshot: later work does not change one taken before', async () => {
    const snapshot = engine.counters;
    const copy = { ...snapshot };
    await engine.tensor([1, 2, 3], [3]).read();
    expect(snapshot).toEqual(copy);
    expect(engine.counters.readbacks).toBe(copy.readbacks + 1);
    expect(engine.readbackCount).toBe(engine.counters.readbacks);
  });

  it('encodeMicros sums the CPU time of encoding: a solve adds to it, less than its wall time', async () => {
    const f = implicitBlock(engine, { weight, bias });
    const q = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    const before = engine.counters;
    const started = performance.now();
    (await picard(f, q, { eps: 0, maxDepth: 40, fused: false })).dispose();
    const elapsed = 1000 * (performance.now() - started);
    const spent = engine.counters.encodeMicros - before.encodeMicros;
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThan(elapsed);
    q.dispose();
    f.dispose();
  });

  it('a tensor read is one submit and one readback, no dispatch', async () => {
    const t = engine.tensor([1, 2, 3, 4], [4]);
    expect(await counted(() => t.read())).toEqual({ dispatches: 0, submits: 1, readbacks: 1 });
    t.dispose();
  });

  it('a fused sequential(linear, add(Qd), tanh()) evaluates f in one dispatch; linear.forward too', async () => {
    const f = sequential(linear(engine, { weight, bias }), add(Qd), tanh());
    await f.prepare(2);
    const u = engine.tensor(Float32Array.from(randomArray(random, 2 * d, 1)), [2, d]);
    const q = engine.tensor(Float32Array.from(randomArray(random, 2 * d, 1)), [2, d]);
    const out = engine.zeros([2, d]);
    const evaluation = await counted(() =>
      engine.submit('test', (encoder) => {
        const pass = encoder.beginComputePass();
        f.encodeForward(pass, { input: u.buffer, output: out.buffer, Qd: q.buffer, gate: engine.openGate() }, 2);
        pass.end();
      }),
    );
    expect(evaluation).toEqual({ dispatches: 1, submits: 1, readbacks: 0 });
    const layer = linear(engine, { weight, bias });
    const y = await layer.forward(u);
    const again = await counted(async () => (await layer.forward(u)).dispose());
    expect(again).toEqual({ dispatches: 1, submits: 1, readbacks: 0 });
    for (const t of [u, q, out, y]) t.dispose();
    f.dispose();
    layer.dispose();
  });

  it('Picard on the tanh block: 2 dispatches per step (f, then the step kernel); fused: 1 (a CPU adapter), 1 per checkEvery steps (a GPU: whole iterations in one workgroup)', async () => {
    const f = implicitBlock(engine, { weight, bias });
    const q = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    const solve = (maxDepth: number, fused: boolean) => counted(async () => (await picard(f, q, { eps: 0, maxDepth, checkEvery: 8, fused })).dispose());
    // eps = 0: every step runs, so the difference of two depths is their steps' dispatches.
    await solve(8, false);
    const [short, long] = [await solve(16, false), await solve(32, false)];
    expect((long.dispatches - short.dispatches) / 16).toBe(2);
    expect(engine.cpuAdapter).toBe(true);
    const [denseShort, denseLong] = [await solve(16, true), await solve(32, true)];
    expect((denseLong.dispatches - denseShort.dispatches) / 16).toBe(1);
    engine.planAs = 'gpu';
    try {
      const [fusedShort, fusedLong] = [await solve(16, true), await solve(32, true)];
      expect((fusedLong.dispatches - fusedShort.dispatches) / 16).toBe(1 / 8);
    } finally {
      engine.planAs = undefined;
    }
    q.dispose();
    f.dispose();
  });
});

describe("adaptive chunks (checkEvery: 'auto', the default)", () => {
  it('a 100-iteration solve reads back 4 times (13 with checkEvery: 8), with the same result', async () => {
    const f = implicitBlock(engine, { weight, bias });
    const q = engine.tensor(Float32Array.from(randomArray(random, 2 * d, 1)), [2, d]);
    for (const solver of [picard, anderson, broyden]) {
      const results: { u: Float32Array; tnstep: number; readbacks: number }[] = [];
      for (const checkEvery of ['auto', 8] as const) {
        const before = engine.counters.readbacks;
        const r = await solver(f, q, { eps: 0, maxDepth: 100, checkEvery, fused: false, lbfgsThres: 8 });
        results.push({ u: await r.uStar.read(), tnstep: r.tnstep, readbacks: engine.counters.readbacks - before - 1 });
        r.dispose();
      }
      expect(results[0].readbacks, solver.name).toBe(4);
      expect(results[1].readbacks, solver.name).toBe(13);
      expect(results[0].tnstep).toBe(results[1].tnstep);
      expect(Array.from(results[0].u)).toEqual(Array.from(results[1].u));
    }
    q.dispose();
    f.dispose();
  });

  it("checkEvery takes 'auto' or an integer; another string is an OptionError naming it", async () => {
    const f = implicitBlock(engine, { weight, bias });
    const q = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    const err = await picard(f, q, { checkEvery: 'fast' as 'auto' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OptionError);
    expect((err as OptionError).argument).toBe('options.checkEvery');
    expect((err as OptionError).message).toMatch(/or 'auto'/);
    q.dispose();
    f.dispose();
  });

  it('a solve that converges early stops at the same step and point as with fixed chunks, without running far past it', async () => {
    const f = implicitBlock(engine, { weight, bias });
    const q = engine.tensor(Float32Array.from(randomArray(random, d, 1)), [d]);
    const auto = await counted(async () => {
      const r = await picard(f, q, { eps: 1e-6, maxDepth: 500, fused: false });
      results.push({ u: await r.uStar.read(), tnstep: r.tnstep });
      r.dispose();
    });
    const fixed = await counted(async () => {
      const r = await picard(f, q, { eps: 1e-6, maxDepth: 500, checkEvery: 8, fused: false });
      results.push({ u: await r.uStar.read(), tnstep: r.tnstep });
      r.dispose();
    });
    expect(results[0].tnstep).toBe(results[1].tnstep);
    expect(results[0].tnstep).toBeLessThan(200);
    expect(Array.from(results[0].u)).toEqual(Array.from(results[1].u));
    // Encoded iterations (4 dispatches each): at most twice the steps taken, plus the first chunks.
    expect(auto.dispatches / 4).toBeLessThanOrEqual(2 * results[0].tnstep + 16);
    expect(auto.readbacks).toBeLessThanOrEqual(fixed.readbacks);
    q.dispose();
    f.dispose();
  });
});
const results: { u: Float32Array; tnstep: number }[] = [];
