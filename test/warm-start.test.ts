// fixedPointCache: fixed points kept on the GPU by sample index, gathered into u0 and scattered back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisposedError, EngineMismatchError, OptionError, ShapeError, fixedPointCache, implicitBlock, picard, type Engine } from '../src';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { expectTyped, rejection, thrown } from './helpers/errors';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const d = 5;
const random = rng(11);
const rows = (n: number) => Float32Array.from(randomArray(random, n * d, 1));

describe('fixedPointCache', () => {
  it('u0 gathers stored rows by index and zeros for the others; store overwrites; one submit, no dispatch or readback', async () => {
    const cache = fixedPointCache(engine, { size: 10, featureSize: d });
    const first = rows(4);
    const indices = [7, 2, 3, 9];
    const before = engine.counters;
    await cache.store(indices, engine.tensor(first, [4, d]));
    const u0 = await cache.u0([3, 0, 7, 8, 9, 2]);
    const after = engine.counters;
    expect({ dispatches: after.dispatches - before.dispatches, submits: after.submits - before.submits, readbacks: after.readbacks - before.readbacks })
      .toEqual({ dispatches: 0, submits: 2, readbacks: 0 });
    expect(u0.shape).toEqual([6, d]);
    const got = await u0.read();
    const row = (source: Float32Array, r: number) => Array.from(source.subarray(r * d, (r + 1) * d));
    const zeros = new Array(d).fill(0);
    expect([0, 1, 2, 3, 4, 5].map((r) => row(got, r))).toEqual([row(first, 2), zeros, row(first, 0), zeros, row(first, 3), row(first, 1)]);
    expect(cache.count).toBe(4);
    expect([7, 2, 3, 9, 0].map((i) => cache.has(i))).toEqual([true, true, true, true, false]);
    // Overwrite one index and add another; the rest stay.
    const second = rows(2);
    await cache.store(new Uint32Array([3, 0]), engine.tensor(second, [2, d]));
    const again = await (await cache.u0([0, 3, 7])).read();
    expect([0, 1, 2].map((r) => row(again, r))).toEqual([row(second, 1), row(second, 0), row(first, 0)]);
    expect(cache.count).toBe(5);
    // A single index gives a [d] tensor.
    const one = await cache.u0(7);
    expect(one.shape).toEqual([d]);
    expect(Array.from(await one.read())).toEqual(row(first, 0));
    cache.forget([7]);
    expect(Array.from(await (await cache.u0(7)).read())).toEqual(zeros);
    cache.forget();
    expect(cache.count).toBe(0);
    cache.dispose();
  });

  it('a warm-started solve takes fewer steps to the same fixed point', async () => {
    const n = 16;
    const w = Float32Array.from(randomArray(random, n * n, 0.6 / Math.sqrt(n)));
    const b = Float32Array.from(randomArray(random, n, 0.1));
    const f = implicitBlock(engine, { weight: w, bias: b });
    const qd = engine.tensor(Float32Array.from(randomArray(random, 3 * n, 1)), [3, n]);
    const cache = fixedPointCache(engine, { size: 100, featureSize: n });
    const batch = [40, 41, 97];
    const cold = await picard(f, qd, { eps: 1e-5, maxDepth: 200, u0: await cache.u0(batch) });
    await cache.store(batch, cold.uStar);
    const warm = await picard(f, qd, { eps: 1e-5, maxDepth: 200, u0: await cache.u0(batch) });
    expect(cold.stats.converged && warm.stats.converged).toBe(true);
    expect(warm.tnstep).toBeLessThan(cold.tnstep / 2);
    const [a, c] = [await cold.uStar.read(), await warm.uStar.read()];
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - c[i])).toBeLessThan(1e-4);
    cache.dispose();
    f.dispose();
  });

  it('bad arguments are typed errors naming them', async () => {
    expectTyped(thrown(() => fixedPointCache(engine, { size: 0, featureSize: d })), OptionError, 'options.size');
    expectTyped(thrown(() => fixedPointCache(engine, { size: 4 } as never)), OptionError, 'options.featureSize');
    expectTyped(thrown(() => fixedPointCache(engine, { size: 4, featureSize: d, sizes: 3 } as never)), OptionError, 'options.sizes');
    const cache = fixedPointCache(engine, { size: 4, featureSize: d });
    expectTyped(await rejection(cache.u0([1, 4])), OptionError, 'indices[1]');
    expectTyped(await rejection(cache.u0([0.5])), OptionError, 'indices[0]');
    expectTyped(await rejection(cache.u0([])), ShapeError, 'indices');
    expectTyped(await rejection(cache.u0('1' as never)), ShapeError, 'indices');
    expectTyped(await rejection(cache.store([1, 1], engine.tensor(rows(2), [2, d]))), OptionError, 'indices[1]');
    expectTyped(await rejection(cache.store([1, 2], engine.tensor(rows(3), [3, d]))), ShapeError, 'uStar');
    expectTyped(await rejection(cache.store([1], [1, 2, 3] as never)), ShapeError, 'uStar');
    const other = await createTestEngine();
    expectTyped(await rejection(cache.store([1], other.tensor(rows(1), [d]))), EngineMismatchError, 'uStar');
    other.destroy();
    expect(cache.count).toBe(0);
    cache.dispose();
    cache.dispose();
    expect(cache.disposed).toBe(true);
    expectTyped(await rejection(cache.u0([0])), DisposedError, 'cache');
    expectTyped(thrown(() => cache.has(0)), DisposedError, 'cache');
  });
});
