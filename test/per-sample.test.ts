// Per-sample convergence (options.convergence = 'per-sample', issue 14): every row of a
// [batch, d] state has its own residual, stop test, best-so-far and step count, so a row's result
// does not depend on the batch it sits in. Small problems (d = 16, batch ≤ 4) whose rows converge
// at very different speeds (Qd scaled per row: a large |Qd| saturates tanh, a faster contraction).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anderson, broyden, gdeq, implicitBlock, jfb, LimitError, OptionError, picard, type Engine, type SolverOptions } from '../src';
import { refAnderson, refBlockMap, refBroyden, refPicard } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rejectsWith, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const D = 16;
const BATCH = 4;
/** Per-row scale of Qd: row 0 converges slowest, row 3 fastest. */
const ROW_SCALE = [0.05, 0.5, 2, 6];

interface Problem {
  w: Float32Array;
  b: Float32Array;
  Qd: Float32Array;
}

function makeProblem(seed: number): Problem {
  const random = rng(seed);
  // ‖w‖∞ ≤ 0.9 (row sums of |w|), so f is a contraction in the ∞-norm.
  const raw = randomArray(random, D * D);
  const w = new Float32Array(D * D);
  for (let i = 0; i < D; i++) {
    let sum = 0;
    for (let j = 0; j < D; j++) sum += Math.abs(raw[i * D + j]);
    for (let j = 0; j < D; j++) w[i * D + j] = (0.9 * raw[i * D + j]) / sum;
  }
  const b = Float32Array.from(randomArray(random, D, 0.2));
  const Qd = new Float32Array(BATCH * D);
  const q = randomArray(random, BATCH * D);
  for (let r = 0; r < BATCH; r++) for (let j = 0; j < D; j++) Qd[r * D + j] = q[r * D + j] * ROW_SCALE[r];
  return { w, b, Qd };
}

type Solve = typeof picard;
const SOLVERS: [string, Solve][] = [
  ['picard', picard],
  ['anderson', anderson],
  ['broyden', broyden],
];
const SEEDS: Record<string, number> = { picard: 1, anderson: 2, broyden: 9 };
const REFERENCES = { picard: refPicard, anderson: refAnderson, broyden: refBroyden };

interface Outcome {
  uStar: Float32Array;
  uPrev: Float32Array;
  tnstep: number;
  stats: Awaited<ReturnType<Solve>>['stats'];
}

async function solve(solver: Solve, p: Problem, rows: number[], options: SolverOptions): Promise<Outcome> {
  const f = implicitBlock(engine, { weight: p.w, bias: p.b });
  const data = new Float32Array(rows.length * D);
  rows.forEach((r, i) => data.set(p.Qd.subarray(r * D, (r + 1) * D), i * D));
  const Qd = engine.tensor(data, [rows.length, D]);
  const result = await solver(f, Qd, options);
  try {
    return { uStar: await result.uStar.read(), uPrev: await result.uPrev.read(), tnstep: result.tnstep, stats: result.stats };
  } finally {
    result.dispose();
    Qd.dispose();
    f.dispose();
  }
}

const row = (a: Float32Array, i: number) => Array.from(a.subarray(i * D, (i + 1) * D));

describe.each(SOLVERS)('%s, convergence: per-sample', (name, solver) => {
  const options: SolverOptions = { convergence: 'per-sample', eps: 1e-5, maxDepth: 60 };

  it('gives each row the result of the row solved alone, bit for bit, and rows stop at their own step', async () => {
    const p = makeProblem(SEEDS[name]);
    const all = await solve(solver, p, [0, 1, 2, 3], options);
    const perSample = all.stats.perSample;
    expect(perSample).toBeDefined();
    if (!perSample) return;
    // Rows of very different speed stop at different steps; the slowest one sets the solve's nstep.
    expect(new Set(perSample.nstep).size, String(perSample.nstep)).toBeGreaterThanOrEqual(2);
    expect(perSample.nstep[0]).toBeGreaterThan(perSample.nstep[3]);
    expect(all.stats.nstep).toBe(Math.max(...perSample.nstep));
    expect(perSample.converged).toEqual([true, true, true, true]);
    expect(all.stats.status).toBe('converged');
    for (let r = 0; r < BATCH; r++) {
      const alone = await solve(solver, p, [r], options);
      expect(alone.stats.perSample?.nstep).toEqual([perSample.nstep[r]]);
      expect(row(all.uStar, r)).toEqual(Array.from(alone.uStar));
      expect(row(all.uPrev, r)).toEqual(Array.from(alone.uPrev));
      // And the batch mode on that row alone: the same rules, so the same step count and point —
      // bit for bit on the generic kernels, which group the sums as the per-row ones do; the fused
      // steps (the default) group Anderson's and Broyden's sums their own way (last bits only).
      const batchMode = await solve(solver, p, [r], { ...options, convergence: 'batch', fused: false });
      expect(batchMode.stats.nstep).toBe(perSample.nstep[r]);
      expect(row(all.uStar, r)).toEqual(Array.from(batchMode.uStar));
      expect(row(all.uPrev, r)).toEqual(Array.from(batchMode.uPrev));
      const fusedBatch = await solve(solver, p, [r], { ...options, convergence: 'batch' });
      expect(fusedBatch.stats.nstep).toBe(perSample.nstep[r]);
      row(all.uStar, r).forEach((v, j) => expect(v).toBeCloseTo(fusedBatch.uStar[j], 6));
    }
    // Another batch (reordered, one row left out) leaves each row's result as it was.
    const other = await solve(solver, p, [3, 1, 0], options);
    expect(other.stats.perSample?.nstep).toEqual([perSample.nstep[3], perSample.nstep[1], perSample.nstep[0]]);
    expect(row(other.uStar, 2)).toEqual(row(all.uStar, 0));
    expect(row(other.uStar, 0)).toEqual(row(all.uStar, 3));
  });

  // (Broyden with returnFinal never stops on eps, as in the original: every row runs to maxDepth.)
  it('freezes a finished row: with returnFinal (picard, anderson) it keeps the iterate it stopped at', async () => {
    const p = makeProblem(SEEDS[name]);
    const final = { ...options, returnFinal: name !== 'broyden' };
    const all = await solve(solver, p, [0, 3], final);
    const alone = await solve(solver, p, [3], final);
    const steps = all.stats.perSample?.nstep ?? [];
    expect(steps[1]).toBeLessThan(steps[0]);
    // Row 3 stopped long before row 0: its last iterate is the one at its own stop.
    expect(row(all.uStar, 1)).toEqual(Array.from(alone.uStar));
    expect(alone.stats.nstep).toBe(steps[1]);
  });

  it('matches the float64 reference row by row (stats.perSample)', async () => {
    const p = makeProblem(4);
    const opts = { ...options, stopMode: 'rel' as const, eps: 1e-4 };
    const all = await solve(solver, p, [0, 1, 2, 3], opts);
    const perSample = all.stats.perSample;
    if (!perSample) throw new Error('no stats.perSample');
    const ref = REFERENCES[name as keyof typeof REFERENCES];
    let slowest = 0;
    for (let r = 0; r < BATCH; r++) {
      const f = refBlockMap({ d: D, w: Float64Array.from(p.w), b: Float64Array.from(p.b) }, Float64Array.from(p.Qd.subarray(r * D, (r + 1) * D)));
      const expected = ref(f, new Float64Array(D), { eps: opts.eps, maxDepth: opts.maxDepth, stopMode: 'rel' });
      expect(perSample.nstep[r]).toBe(expected.nstep);
      expect(perSample.converged[r]).toBe(expected.converged);
      expect(perSample.status[r]).toBe('converged');
      expect(Math.abs(perSample.absResidual[r] - expected.absResidual)).toBeLessThanOrEqual(1e-2 * expected.absResidual + 1e-6);
      expect(Math.abs(perSample.relResidual[r] - expected.relResidual)).toBeLessThanOrEqual(1e-2 * expected.relResidual + 1e-6);
      expect(maxAbsDiff(row(all.uStar, r), expected.uStar)).toBeLessThanOrEqual(1e-4);
      slowest = Math.max(slowest, expected.tnstep);
    }
    expect(all.tnstep).toBe(slowest);
    expect(all.stats.absResidual).toBe(Math.max(...perSample.absResidual));
  });

  it('traces, per iteration, the largest residual over the rows (frozen rows with their last)', async () => {
    const p = makeProblem(SEEDS[name]);
    const all = await solve(solver, p, [0, 1, 2, 3], { ...options, trace: true });
    const ref = REFERENCES[name as keyof typeof REFERENCES];
    const traces = [0, 1, 2, 3].map((r) => {
      const f = refBlockMap({ d: D, w: Float64Array.from(p.w), b: Float64Array.from(p.b) }, Float64Array.from(p.Qd.subarray(r * D, (r + 1) * D)));
      return ref(f, new Float64Array(D), { eps: options.eps, maxDepth: options.maxDepth }).trace.abs;
    });
    // Picard's first entry is the first iterate's (its start measures u0 and u1 at once).
    const skip = name === 'picard' ? 1 : 0;
    const longest = Math.max(...traces.map((t) => t.length));
    const expected = Array.from({ length: longest - skip }, (_, k) => Math.max(...traces.map((t) => t[Math.min(k + skip, t.length - 1)])));
    const got = all.stats.trace?.abs ?? [];
    expect(got).toHaveLength(expected.length);
    got.forEach((v, k) => expect(Math.abs(v - expected[k]), `entry ${k}`).toBeLessThanOrEqual(1e-2 * expected[k] + 1e-6));
  });

  it("reports maxDepth per row, and the whole solve's status from its rows", async () => {
    const p = makeProblem(SEEDS[name]);
    // A depth between the fast row's steps and the slow row's (seen in a solve without the limit).
    const free = (await solve(solver, p, [0, 3], options)).stats.perSample?.nstep ?? [];
    expect(free[0] - free[1], String(free)).toBeGreaterThanOrEqual(2);
    const maxDepth = free[1] + 1;
    const all = await solve(solver, p, [0, 3], { ...options, maxDepth });
    const perSample = all.stats.perSample;
    expect(perSample?.status).toEqual(['maxDepth', 'converged']);
    expect(perSample?.nstep).toEqual([maxDepth, free[1]]);
    expect(perSample?.converged).toEqual([false, true]);
    expect(all.stats.status).toBe('maxDepth');
    expect(all.stats.converged).toBe(false);
  });
});

describe('convergence option', () => {
  it("defaults to 'batch': one stop test for the whole batch, no perSample stats", async () => {
    const p = makeProblem(6);
    const opts = { eps: 1e-5, maxDepth: 60 };
    const result = await solve(picard, p, [0, 1, 2, 3], opts);
    expect(result.stats.perSample).toBeUndefined();
    const f = refBlockMap({ d: D, w: Float64Array.from(p.w), b: Float64Array.from(p.b) }, Float64Array.from(p.Qd));
    expect(result.stats.nstep).toBe(refPicard(f, new Float64Array(BATCH * D), opts).nstep);
  });

  it('rejects a bad value, and per-sample broyden with ls or returnB (gdeq), naming options.convergence', async () => {
    const p = makeProblem(7);
    const f = implicitBlock(engine, { weight: p.w, bias: p.b });
    const Qd = engine.tensor(p.Qd, [BATCH, D]);
    try {
      for (const [solver, options] of [
        [picard, { convergence: 'rows' }],
        [anderson, { convergence: true }],
        [broyden, { convergence: 'per-sample', ls: true }],
        [broyden, { convergence: 'per-sample', returnB: true }],
      ] as const) {
        const err = await rejectsWith(solver(f, Qd, options as unknown as SolverOptions));
        expect(err).toBeInstanceOf(OptionError);
        expect(err.argument).toBe('options.convergence');
      }
      // gdeq asks broyden for its factors, which per-sample broyden does not keep.
      const err = await rejectsWith(gdeq(f, Qd, { solver: broyden, convergence: 'per-sample' }));
      expect(err).toBeInstanceOf(OptionError);
      expect(err.argument).toBe('options.convergence');
    } finally {
      Qd.dispose();
      f.dispose();
    }
  });

  it('leaves nothing in use after a solve and its dispose(), for every solver', async () => {
    const p = makeProblem(SEEDS.anderson);
    const f = implicitBlock(engine, { weight: p.w, bias: p.b });
    const Qd = engine.tensor(p.Qd, [BATCH, D]);
    try {
      for (const solver of [picard, anderson, broyden]) {
        (await solver(f, Qd, { convergence: 'per-sample', eps: 1e-5, maxDepth: 60 })).dispose(); // the pool is warm now
        const { allocatedBytes, pooledBytes } = engine.memory;
        const inUse = allocatedBytes - pooledBytes;
        const result = await solver(f, Qd, { convergence: 'per-sample', eps: 1e-5, maxDepth: 60 });
        result.dispose();
        const after = engine.memory;
        expect(after.allocatedBytes - after.pooledBytes).toBe(inUse);
      }
    } finally {
      Qd.dispose();
      f.dispose();
    }
  });

  it('treats a [d] state as one row', async () => {
    const p = makeProblem(SEEDS.picard);
    const f = implicitBlock(engine, { weight: p.w, bias: p.b });
    const Qd = engine.tensor(p.Qd.subarray(0, D), [D]);
    try {
      const one = await picard(f, Qd, { convergence: 'per-sample', eps: 1e-5, maxDepth: 60 });
      const batched = await solve(picard, p, [0], { convergence: 'per-sample', eps: 1e-5, maxDepth: 60 });
      expect(one.stats.perSample?.nstep).toEqual(batched.stats.perSample?.nstep);
      expect(Array.from(await one.uStar.read())).toEqual(Array.from(batched.uStar));
      expect(one.uStar.shape).toEqual([D]);
      one.dispose();
    } finally {
      Qd.dispose();
      f.dispose();
    }
  });

  it('rejects more rows than a dispatch can have workgroups with LimitError naming Qd, leaving nothing in use', async () => {
    const rows = engine.device.limits.maxComputeWorkgroupsPerDimension + 1;
    const f = implicitBlock(engine, { weight: new Float32Array([0.5]), bias: new Float32Array([0.1]) });
    const Qd = engine.tensor(new Float32Array(rows), [rows, 1]);
    try {
      // The layer's buffers for this batch are made by its first solve (and kept until f.dispose()).
      (await picard(f, Qd, { maxDepth: 1 })).dispose();
      const { allocatedBytes, pooledBytes } = engine.memory;
      const err = await rejectsWith(picard(f, Qd, { convergence: 'per-sample' }));
      expect(err).toBeInstanceOf(LimitError);
      expect(err.argument).toBe('Qd');
      expect(engine.memory.allocatedBytes - engine.memory.pooledBytes).toBe(allocatedBytes - pooledBytes);
    } finally {
      Qd.dispose();
      f.dispose();
    }
  });

  it('passes through the backprop wrappers (jfb)', async () => {
    const p = makeProblem(8);
    const f = implicitBlock(engine, { weight: p.w, bias: p.b });
    const Qd = engine.tensor(p.Qd, [BATCH, D]);
    try {
      const out = await jfb(f, Qd, { solver: anderson, convergence: 'per-sample', eps: 1e-5, maxDepth: 60 });
      const steps = out.stats.perSample?.nstep ?? [];
      expect(steps).toHaveLength(BATCH);
      expect(steps[0]).toBeGreaterThan(steps[3]);
      out.dispose();
    } finally {
      Qd.dispose();
      f.dispose();
    }
  });
});
