// Solve programs cached per configuration (src/solvers/program.ts): a repeated solve creates no
// buffers and no bind groups, its results are its own, and the cache lets go of what goes away.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, anderson, broyden, implicitBlock, picard, type Solver, type SolveResult, type SolverOptions, type Tensor } from '../src';
import { SHADERS } from '../src/gpu/shaders';
import { UNIFORM_CACHE_SIZE } from '../src/engine';
import { refBlockForward } from '../src/reference/block';
import { refPicard } from '../src/reference/solvers';
import { programCache } from '../src/solvers/program';
import { resolveOptions } from '../src/solvers/options';
import { OptionError } from '../src/errors';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';
import { Usage, expectTyped, rejection } from './helpers/errors';
import { DisposedError } from '../src/errors';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const D = 16;
const random = rng(11);
const w = Float64Array.from(Float32Array.from(randomArray(random, D * D, 0.3)));
const b = Float64Array.from(Float32Array.from(randomArray(random, D, 0.3)));
const qdData = Float64Array.from(Float32Array.from(randomArray(random, 2 * D, 1)));
const solvers: [string, Solver][] = [['picard', picard], ['anderson', anderson], ['broyden', broyden]];

/** Max |f(u) − u| over the rows of u, by the float64 reference. */
function residual(qd: Float64Array, u: Float32Array, rows: number, weight: Float64Array<ArrayBufferLike> = w): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    const row = Float64Array.from(u.subarray(r * D, (r + 1) * D));
    worst = Math.max(worst, maxAbsDiff(refBlockForward({ d: D, w: weight, b }, row, qd.subarray(r * D, (r + 1) * D)), row));
  }
  return worst;
}

/** Bytes held by live objects (as test/memory.test.ts counts them). */
function inUse(e: Engine): number {
  return e.memory.allocatedBytes - e.memory.pooledBytes;
}

async function quiet(e: Engine): Promise<void> {
  await e.device.queue.onSubmittedWorkDone();
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
}

async function values(result: SolveResult): Promise<Float32Array> {
  return result.uStar.read();
}

describe('solve programs', () => {
  it('a third identical solve creates no buffer and no bind group, and gives the first solve\'s values', async () => {
    for (const planAs of ['cpu', 'gpu'] as const) {
      engine.planAs = planAs;
      try {
        const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
        const qd = engine.tensor(qdData, [2, D]);
        for (const [name, solver] of solvers) {
          const options: SolverOptions = { eps: 1e-5, maxDepth: 60 };
          const first = await solver(f, qd, options);
          const expected = await values(first);
          first.dispose();
          (await solver(f, qd, options)).dispose();
          // The look-ahead chunk of the solve before may still hold its staging buffer: let it land.
          await quiet(engine);
          const before = engine.counters;
          const third = await solver(f, qd, options);
          const after = engine.counters;
          expect(after.buffersCreated - before.buffersCreated, `${name} (${planAs})`).toBe(0);
          expect(after.bindGroupsCreated - before.bindGroupsCreated, `${name} (${planAs})`).toBe(0);
          const got = await values(third);
          expect(Array.from(got), `${name} (${planAs})`).toEqual(Array.from(expected));
          expect(third.stats.converged).toBe(true);
          expect(residual(qdData, got, 2)).toBeLessThan(1e-4);
          third.dispose();
        }
        qd.dispose();
        f.dispose();
      } finally {
        engine.planAs = undefined;
      }
    }
  });

  it('a cached program serves a new Qd tensor every solve (a training loop\'s), bit for bit as an uncached solve, on every path', async () => {
    // The paths a kept program may take here: the dense step (few-row vec4 / scalar, tiled), the
    // generic kernels, and as on a GPU the whole-iteration kernel and split-k steps.
    const cases: { d: number; rows: number; forwardKernel?: 'matmul'; planAs?: 'gpu'; options?: SolverOptions }[] = [
      { d: 16, rows: 3 }, { d: 18, rows: 3 }, { d: 16, rows: 40, forwardKernel: 'matmul' }, { d: 16, rows: 3, options: { fused: false } },
      { d: 16, rows: 2, planAs: 'gpu' }, { d: 260, rows: 1, planAs: 'gpu' },
    ];
    for (const c of cases) {
      engine.planAs = c.planAs;
      try {
        const weight = Float32Array.from(randomArray(random, c.d * c.d, 0.3 / Math.sqrt(c.d)));
        const bias = Float32Array.from(randomArray(random, c.d, 0.1));
        const f = implicitBlock(engine, { weight, bias, forwardKernel: c.forwardKernel });
        for (const [name, solver] of solvers) {
          const options: SolverOptions = { eps: 1e-6, maxDepth: 12, ...c.options };
          for (let k = 0; k < 3; k++) {
            const data = Float32Array.from(randomArray(random, c.rows * c.d, 1));
            const q = engine.tensor(data, [c.rows, c.d]);
            const cached = await solver(f, q, options);
            // The same solve on a layer of its own (its first solve: no program, Qd bound as it is).
            const fresh = implicitBlock(engine, { weight, bias, forwardKernel: c.forwardKernel });
            const reference = await solver(fresh, q, options);
            expect(Array.from(await values(cached)), `${name} d = ${c.d} × ${c.rows} ${JSON.stringify(c)} solve ${k}`).toEqual(Array.from(await values(reference)));
            expect(cached.tnstep).toBe(reference.tnstep);
            cached.dispose();
            reference.dispose();
            fresh.dispose();
            q.dispose();
          }
        }
        f.dispose();
      } finally {
        engine.planAs = undefined;
      }
    }
  });

  it("an earlier solve's results stay as they were while later solves reuse its program", async () => {
    const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qd = engine.tensor(qdData.subarray(0, D), [D]);
    const starts = [0.5, -0.25, 1].map((v) => engine.tensor(new Float32Array(D).fill(v), [D]));
    const fRef = (u: Float64Array) => refBlockForward({ d: D, w, b }, u, qdData.subarray(0, D));
    for (const [name, solver] of solvers) {
      // eps = 0 and 3 iterations: each start gives its own point.
      const results: SolveResult[] = [];
      for (const u0 of starts) results.push(await solver(f, qd, { eps: 0, maxDepth: 3, u0 }));
      const firstValues = await values(results[1]);
      for (let i = 0; i < 3; i++) (await solver(f, qd, { eps: 0, maxDepth: 3, u0: starts[i % 2] })).dispose();
      expect(Array.from(await values(results[1])), name).toEqual(Array.from(firstValues));
      const points = await Promise.all(results.map(values));
      expect(maxAbsDiff(points[1], points[2])).toBeGreaterThan(1e-3);
      if (name === 'picard') {
        // Three Picard steps from each start, by the float64 reference (best of the iterates: the
        // contraction makes the last one the best).
        for (let i = 0; i < 3; i++) {
          const ref = refPicard(fRef, Float64Array.from(await starts[i].read()), { eps: 0, maxDepth: 3 });
          expect(maxAbsDiff(points[i], ref.uStar), `start ${i}`).toBeLessThan(1e-5);
        }
      }
      for (const r of results) r.dispose();
    }
    for (const t of starts) t.dispose();
    qd.dispose();
    f.dispose();
  });

  it('eps, batch, u0 and the parameters each make a program of their own, with correct results', async () => {
    const e = await createTestEngine();
    const cache = programCache(e);
    const f = implicitBlock(e, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const w2 = Float64Array.from(w, (v) => v * 0.5);
    const f2 = implicitBlock(e, { weight: Float32Array.from(w2), bias: Float32Array.from(b) });
    const one = e.tensor(qdData.subarray(0, D), [1, D]);
    const two = e.tensor(qdData, [2, D]);
    const u0 = e.tensor(new Float32Array(2 * D).fill(0.1), [2, D]);
    const configurations: [typeof f, Tensor, SolverOptions, Float64Array<ArrayBufferLike>][] = [
      [f, two, { eps: 1e-5 }, w],
      [f, two, { eps: 1e-6 }, w],
      [f, one, { eps: 1e-5 }, w],
      [f, two, { eps: 1e-5, u0 }, w],
      [f2, two, { eps: 1e-5 }, w2],
    ];
    for (const [name, solver] of solvers) {
      const sizes: number[] = [];
      for (const [layer, qd, options, weight] of configurations) {
        for (let k = 0; k < 3; k++) {
          const out = await solver(layer, qd, { maxDepth: 80, ...options });
          expect(out.stats.converged, name).toBe(true);
          expect(residual(qdData, await values(out), qd.shape[0], weight), name).toBeLessThan(1e-4);
          out.dispose();
        }
        sizes.push(cache.size);
      }
        // Each configuration's second solve kept a program.
      if (name === 'picard') expect(sizes).toEqual([1, 2, 3, 4, 5]);
    }
    expect(cache.size).toBe(8);
    for (const t of [one, two, u0]) t.dispose();
    f.dispose();
    f2.dispose();
    e.destroy();
    expect(cache.size).toBe(0);
  });

  it('disposing the layer frees its programs (not disposing Qd: a program binds its own copy of it); destroying the engine frees them all', async () => {
    const e = await createTestEngine();
    const cache = programCache(e);
    const baseline = inUse(e);
    const f = implicitBlock(e, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qd = e.tensor(qdData, [2, D]);
    const withLayer = inUse(e);
    for (const [, solver] of solvers) for (let k = 0; k < 3; k++) (await solver(f, qd, { eps: 1e-5 })).dispose();
    await quiet(e);
    expect(cache.size).toBe(3);
    expect(inUse(e)).toBeGreaterThan(withLayer);
    f.dispose();
    expect(cache.size).toBe(0);
    await quiet(e);
    expect(inUse(e)).toBe(baseline + 2 * D * 4);
    qd.dispose();
    expect(inUse(e)).toBe(baseline);

    const g = implicitBlock(e, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const q2 = e.tensor(qdData, [2, D]);
    for (let k = 0; k < 3; k++) (await picard(g, q2, { eps: 1e-5 })).dispose();
    expect(cache.size).toBe(1);
    q2.dispose();
    expect(cache.size).toBe(1);
    // Another Qd tensor of the shape: the same program, nothing created.
    const q3 = e.tensor(qdData, [2, D]);
    const before = e.counters;
    (await picard(g, q3, { eps: 1e-5 })).dispose();
    expect(e.counters.buffersCreated - before.buffersCreated).toBe(0);
    expect(e.counters.bindGroupsCreated - before.bindGroupsCreated).toBe(0);
    expect(cache.size).toBe(1);
    for (let k = 0; k < 3; k++) (await anderson(g, q3, { eps: 1e-5 })).dispose();
    expect(cache.size).toBe(2);
    g.dispose();
    expect(cache.size).toBe(0);
    q3.dispose();
    e.destroy();
    expect(cache.size).toBe(0);
  });

  it('a program whose uniform buffer leaves the engine cache is dropped; the next solve is correct', async () => {
    const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qd = engine.tensor(qdData, [2, D]);
    const cache = programCache(engine);
    const kernel = await engine.kernel('nonFinite', SHADERS.nonFinite);
    for (let k = 0; k < 2; k++) (await anderson(f, qd, { eps: 1e-5, maxDepth: 77 })).dispose();
    expect(cache.size).toBeGreaterThan(0);
    // Every cached uniform buffer pushed out: no program is left.
    for (let j = 0; j < UNIFORM_CACHE_SIZE; j++) engine.params(kernel, { n: 900_000 + j });
    expect(cache.size).toBe(0);
    expect(engine.memory.uniformBuffers).toBe(UNIFORM_CACHE_SIZE);
    const out = await anderson(f, qd, { eps: 1e-5, maxDepth: 77 });
    expect(out.stats.converged).toBe(true);
    expect(residual(qdData, await values(out), 2)).toBeLessThan(1e-4);
    out.dispose();
    qd.dispose();
    f.dispose();
  });

  it('concurrent solves of one configuration each get their own program and their own result', async () => {
    const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qd = engine.tensor(qdData, [2, D]);
    const starts = [0.5, -0.5, 0.25].map((v) => engine.tensor(new Float32Array(2 * D).fill(v), [2, D]));
    for (const [name, solver] of solvers) {
      const options = (u0: Tensor): SolverOptions => ({ eps: 0, maxDepth: 20, checkEvery: 2, u0 });
      const alone: Float32Array[] = [];
      for (const u0 of starts) {
        const out = await solver(f, qd, options(u0));
        alone.push(await values(out));
        out.dispose();
      }
      for (let round = 0; round < 2; round++) {
        const together = await Promise.all(starts.map((u0) => solver(f, qd, options(u0))));
        for (let i = 0; i < starts.length; i++) expect(Array.from(await values(together[i])), `${name} start ${i}`).toEqual(Array.from(alone[i]));
        for (const out of together) out.dispose();
      }
    }
    for (const t of starts) t.dispose();
    qd.dispose();
    f.dispose();
  });

  it('a cached configuration still checks its arguments: a disposed Qd or wrapped parameter is a DisposedError naming it', async () => {
    const own = engine.device.createBuffer({ size: D * D * 4, usage: Usage.STORAGE | Usage.COPY_DST | Usage.COPY_SRC });
    engine.device.queue.writeBuffer(own, 0, Float32Array.from(w));
    const weight = engine.wrap(own, [D, D]);
    const f = implicitBlock(engine, { weight, bias: Float32Array.from(b) });
    const params: Readonly<Record<string, Tensor>> = f.params;
    const name = Object.keys(params).find((key) => params[key] === weight) as string;
    const qd = engine.tensor(qdData, [2, D]);
    for (const [, solver] of solvers) {
      const before = engine.counters.submits;
      for (let k = 0; k < 3; k++) (await solver(f, qd, { eps: 1e-5 })).dispose();
      expect(engine.counters.submits).toBeGreaterThan(before);
    }
    const copy = engine.tensor(qdData, [2, D]);
    for (const [, solver] of solvers) for (let k = 0; k < 3; k++) (await solver(f, copy, { eps: 1e-5 })).dispose();
    copy.dispose();
    for (const [, solver] of solvers) expectTyped(await rejection(solver(f, copy, { eps: 1e-5 })), DisposedError, 'Qd');
    weight.dispose();
    const cache = programCache(engine);
    const kept = cache.size;
    for (const [, solver] of solvers) expectTyped(await rejection(solver(f, qd, { eps: 1e-5 })), DisposedError, `f.params.${name}`);
    // A wrapped tensor's dispose frees nothing: the failed checks drop the three programs.
    expect(cache.size).toBe(kept - 3);
    qd.dispose();
    f.dispose();
    own.destroy();
  });

  it("a cached solve's first submit is its start alone, and a solve submits as many times as an uncached one", async () => {
    const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qd = engine.tensor(qdData, [2, D]);
    for (const [name, solver] of solvers) {
      const counts: number[] = [];
      for (let k = 0; k < 4; k++) {
        const before = engine.counters;
        (await solver(f, qd, { eps: 0, maxDepth: 30, checkEvery: 10, overlap: false })).dispose();
        const after = engine.counters;
        counts.push(after.submits - before.submits);
        expect(after.dispatches - before.dispatches).toBeGreaterThan(0);
      }
      // The start, then three chunks of at most 10 iterations.
      expect(counts, name).toEqual([4, 4, 4, 4]);
    }
    qd.dispose();
    f.dispose();
  });

  it('options met again resolve to the last result only when every entry is the same', () => {
    const options: SolverOptions = { eps: 1e-4, maxDepth: 12 };
    const first = resolveOptions('picard', options);
    expect(resolveOptions('picard', { eps: 1e-4, maxDepth: 12 })).toBe(first);
    expect(resolveOptions('anderson', options).maxDepth).toBe(12);
    options.eps = 1e-6;
    expect(resolveOptions('picard', options).eps).toBe(1e-6);
    options.maxDepth = 0;
    expectTyped((() => { try { resolveOptions('picard', options); } catch (err) { return err; } })(), OptionError, 'options.maxDepth');
    expect(resolveOptions('picard', { eps: 1e-6, maxDepth: 12, key: 3 }).key).toBe(3);
    expect(resolveOptions('picard', { maxDepth: 12, eps: 1e-6 }).key).toBe(0);
    // Inherited options are read as before (not remembered).
    const inherited = Object.create({ maxDepth: 7 }) as SolverOptions;
    expect(resolveOptions('picard', inherited).maxDepth).toBe(7);
    expect(resolveOptions('picard', undefined).maxDepth).toBe(100);
    expect(resolveOptions('broyden', undefined).maxDepth).toBe(50);
  });
});
