// Broyden's fused iterations: after the layer's evaluation, three kernels (measure, decide,
// advance: one round of partial sums per dispatch boundary); for a dense layer two dispatches, the
// product with the advance in its prologue and the measurement in its epilogue, then decide; with
// the line search 8 dense trials (each taking the search's decision on the one before), then decide.
// Every path must give the counts, statuses and (to rounding) iterates of the others and the
// float64 reference's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broyden, implicitBlock, type Engine, type SolverOptions, type Tensor } from '../src';
import { refBlockMap, refBroyden, type RefMap, type RefSolveOptions } from '../src/reference';
import { createTestEngine, randomArray, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const random = rng(13);

function block(d: number, forwardKernel: 'auto' | 'matmul') {
  const weight = Float32Array.from(randomArray(random, d * d, 0.8 / Math.sqrt(d)));
  const bias = Float32Array.from(randomArray(random, d, 0.1));
  return { f: implicitBlock(engine, { weight, bias, forwardKernel }), weight, bias };
}

async function solve(f: ReturnType<typeof implicitBlock>, q: Tensor, options: SolverOptions) {
  const before = engine.counters.dispatches;
  const r = await broyden(f, q, { trace: true, ...options });
  const dispatches = engine.counters.dispatches - before;
  const out = {
    u: Array.from(await r.uStar.read()), prev: Array.from(await r.uPrev.read()), tnstep: r.tnstep, stats: r.stats, dispatches,
    us: r.B ? Array.from(await r.B.Us.read()) : undefined, valid: r.B?.validMask,
  };
  r.dispose();
  return out;
}

const closeTo = (a: readonly number[], b: readonly number[], tolerance: number) => {
  expect(a.length).toBe(b.length);
  const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  expect(worst).toBeLessThan(tolerance);
};

describe('fused Broyden iterations', () => {
  // [d, batch, forwardKernel]: 'auto' is the few-row product on this (CPU) adapter (vec4 loads of
  // the weight at d = 40, the scalar body at d = 42, the one-row body at d = 260, batch 1: two
  // workgroups), 'matmul' the tiled one; batch × d > 1024 (many workgroups of each).
  const cases = [[40, 30, 'auto'], [42, 25, 'auto'], [36, 33, 'matmul'], [260, 1, 'auto']] as const;

  it.each(cases)('d = %i, batch %i (%s): the dense path, the generic path and the float64 reference agree', async (d, batch, forwardKernel) => {
    const { f, weight, bias } = block(d, forwardKernel);
    // The body each case is meant to cover.
    const product = f.fusedPicard?.(batch)?.product;
    expect(product?.body).toBe(forwardKernel === 'matmul' ? 'tiled' : d % 4 !== 0 ? 'rows' : batch === 1 ? 'row' : 'rows4');
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const all: SolverOptions[] = [
      { eps: 1e-5, maxDepth: 30, lbfgsThres: 4 },
      // A contractive block: every step accepted at s = 1 (the trials after the first idle).
      { eps: 1e-5, maxDepth: 30, lbfgsThres: 4, ls: true },
      // The factors grow sensitive to rounding near convergence (u = w / vᵀΔg): compared early.
      { eps: 0, maxDepth: 6, lbfgsThres: 4, returnB: true },
      { eps: 1e-4, maxDepth: 9, stopMode: 'rel', returnFinal: true },
    ];
    // The tiled product runs 256-thread workgroups, slow on a CPU: one option set there.
    for (const options of forwardKernel === 'matmul' ? all.slice(-1) : all) {
      const fused = await solve(f, q, { ...options, fused: true });
      const generic = await solve(f, q, { ...options, fused: false });
      // The same product and rules, the partial sums grouped differently: equal to rounding.
      expect([fused.tnstep, fused.stats.nstep, fused.stats.status]).toEqual([generic.tnstep, generic.stats.nstep, generic.stats.status]);
      expect(fused.stats.trace?.abs.length).toBe(generic.stats.trace?.abs.length);
      closeTo(fused.u, generic.u, 1e-5);
      closeTo(fused.prev, generic.prev, 1e-5);
      if (options.returnB) {
        expect(fused.valid).toEqual(generic.valid);
        const us = generic.us ?? [];
        const scale = us.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(scale).toBeGreaterThan(0);
        closeTo(fused.us ?? [], us, 1e-4 * scale);
      }
      const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
      const reference = refBroyden(map, new Float64Array(batch * d), {
        eps: options.eps, maxDepth: options.maxDepth, stopMode: options.stopMode ?? 'abs', returnFinal: options.returnFinal ?? false,
        lbfgsThres: options.lbfgsThres, ls: options.ls,
      });
      expect(fused.tnstep).toBe(reference.tnstep);
      fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
    }
    q.dispose();
    f.dispose();
  });

  it.each(cases)('d = %i, batch %i (%s): dispatches per iteration: 2 fused, 1 + 3 generic; with the line search 9 fused, 36 generic', async (d, batch, forwardKernel) => {
    const { f } = block(d, forwardKernel);
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * d, 1)), [batch, d]);
    const perIteration = async (options: SolverOptions) => {
      // eps = 0: every iteration is encoded; the difference of two depths is their iterations' dispatches.
      const depths = forwardKernel === 'matmul' ? [3, 5] : [4, 8];
      const [short, long] = [await solve(f, q, { eps: 0, maxDepth: depths[0], checkEvery: 2, ...options }), await solve(f, q, { eps: 0, maxDepth: depths[1], checkEvery: 2, ...options })];
      expect([short.stats.nstep, long.stats.nstep]).toEqual(depths);
      return (long.dispatches - short.dispatches) / (depths[1] - depths[0]);
    };
    expect(await perIteration({ fused: true })).toBe(2);
    expect(await perIteration({ fused: false })).toBe(4);
    // 8 dense trials (each taking the search's decision on the one before), then the decide kernel.
    expect(await perIteration({ ls: true })).toBe(9);
    if (forwardKernel === 'auto') {
      // 8 trials of (trial point, evaluation, residual sums, line-search decision), finalize, then the three kernels.
      expect(await perIteration({ ls: true, fused: false })).toBe(36);
    }
    q.dispose();
    f.dispose();
  });

  /** Evaluations of f in each of the first `depth` iterations of the float64 reference. */
  const referenceEvals = (map: RefMap, n: number, options: RefSolveOptions, depth: number): number[] => {
    const totals = Array.from({ length: depth + 1 }, (_, m) => (m === 0 ? 0 : refBroyden(map, new Float64Array(n), { ...options, maxDepth: m }).tnstep));
    return totals.slice(1).map((total, t) => total - totals[t]);
  };

  // [d, batch, forwardKernel, diagonal, scale, seed]: W = diagonal·I + a uniform block of ±scale/√d.
  // 3·I + 0.5: iteration 1 accepts after the quadratic step and one halving, 2 and 3 at s = 1, 4
  // takes all 8 evaluations (so the decide kernel takes the last decision) and returns the clamped
  // step amin, 5 returns s1 < amin; the random blocks of ±3/√d halve every iteration and clamp late.
  const searchCases = [
    [24, 3, 'auto', 3, 0.5, 1],
    [40, 30, 'auto', 0, 3, 1],
    [36, 33, 'matmul', 0, 3, 1],
  ] as const;

  it.each(searchCases)('line search, d = %i, batch %i (%s), W = %f·I + ±%f/√d: the dense trials, the generic path and the float64 reference agree', async (d, batch, forwardKernel, diagonal, scale, seed) => {
    const local = rng(seed);
    const weight = Float32Array.from(randomArray(local, d * d, scale / Math.sqrt(d)));
    for (let i = 0; i < d; i++) weight[i * d + i] += diagonal;
    const bias = Float32Array.from(randomArray(local, d, 0.1));
    const qd = Float32Array.from(randomArray(local, batch * d, 1));
    const f = implicitBlock(engine, { weight, bias, forwardKernel });
    const q = engine.tensor(qd, [batch, d]);
    const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
    const options = { eps: 0, maxDepth: 8, lbfgsThres: 4, ls: true, returnB: true } as const;
    const reference = refBroyden(map, new Float64Array(batch * d), options);
    // What the case covers, past iteration 0 (which runs the generic kernels on every path).
    const steps = (reference.steps ?? []).slice(1);
    const evals = referenceEvals(map, batch * d, options, options.maxDepth).slice(1);
    expect(steps.some((s) => s < 1)).toBe(true);
    expect(steps.some((s, t) => s === 0.01 && evals[t] > 2)).toBe(true); // a halving step clamped to amin
    if (diagonal > 0) {
      expect(steps).toContain(1);
      expect(evals).toContain(8);
      expect(steps.some((s) => s < 0.01)).toBe(true); // s1 below amin, returned as evaluated
    }

    const fused = await solve(f, q, { ...options, fused: true });
    // A rerun, and (the few-row product: faster on a CPU) one read back after every iteration (the
    // header handed over at each chunk's end): bit for bit.
    const again = await solve(f, q, { ...options, fused: true });
    const chunked = forwardKernel === 'auto' ? [await solve(f, q, { ...options, fused: true, checkEvery: 1 })] : [];
    const generic = await solve(f, q, { ...options, fused: false });
    for (const other of [again, ...chunked]) {
      expect(other.u).toEqual(fused.u);
      expect(other.prev).toEqual(fused.prev);
      expect([other.tnstep, other.stats]).toEqual([fused.tnstep, fused.stats]);
      expect(other.us).toEqual(fused.us);
    }
    for (const out of [fused, generic]) {
      expect([out.tnstep, out.stats.nstep]).toEqual([reference.tnstep, reference.nstep]);
      expect(out.stats.trace?.abs.length).toBe(reference.trace.abs.length);
      out.stats.trace?.abs.forEach((a, i) => expect(Math.abs(a - reference.trace.abs[i])).toBeLessThan(1e-4 * reference.trace.abs[i]));
      closeTo(out.u, Array.from(reference.uStar), 1e-4);
      closeTo(out.prev, Array.from(reference.uPrev), 1e-4);
    }
    expect(fused.stats.status).toBe(generic.stats.status);
    // The same rules, the partial sums grouped differently (and φ too): equal to rounding, which the
    // steps along the ascent directions of these blocks amplify somewhat.
    closeTo(fused.u, generic.u, 5e-5);
    closeTo(fused.prev, generic.prev, 5e-5);
    expect(fused.valid).toEqual(generic.valid);
    const us = generic.us ?? [];
    const usScale = us.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(usScale).toBeGreaterThan(0);
    closeTo(fused.us ?? [], us, 1e-4 * usScale);
    q.dispose();
    f.dispose();
  });

  it('more than 64 factor columns (the decide kernel takes them 64 at a time): both paths follow the float64 reference', async () => {
    // A slowly converging block (‖W‖ ≈ 3): 85 iterations, so up to 84 columns are in use.
    const local = rng(7);
    const d = 24;
    const batch = 3;
    const weight = Float32Array.from(randomArray(local, d * d, 3 / Math.sqrt(d)));
    const bias = Float32Array.from(randomArray(local, d, 0.1));
    const qd = Float32Array.from(randomArray(local, batch * d, 1));
    const f = implicitBlock(engine, { weight, bias });
    const q = engine.tensor(qd, [batch, d]);
    const options = { eps: 1e-5, maxDepth: 150, lbfgsThres: 100 };
    const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
    const reference = refBroyden(map, new Float64Array(batch * d), options);
    expect(reference.tnstep).toBeGreaterThan(70);
    for (const fused of [true, false]) {
      const out = await solve(f, q, { ...options, fused });
      expect([out.stats.status, out.tnstep]).toEqual(['converged', reference.tnstep]);
      closeTo(out.u, Array.from(reference.uStar), 1e-5);
    }
    q.dispose();
    f.dispose();
  });

  it("rows of more than 16 partial sums (lib/row_sums.wgsl's tree; a GPU's plan: 20 workgroups per kernel), with the line search: both paths follow the float64 reference", async () => {
    // n = 64 × 80 = 5120 elements: 20 workgroups of the generic kernels on a GPU's plan, so the
    // decide kernel, the advance and the line search's decisions each total rows of 20 entries;
    // at most 16 (this CPU adapter's rows, a dense step at batch 1) every thread adds them itself.
    const d = 64;
    const batch = 80;
    // The plan before the layer: its kernels are the GPU's choice.
    engine.planAs = 'gpu';
    const { f, weight, bias } = block(d, 'auto');
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
    try {
      for (const options of [{ eps: 1e-5, maxDepth: 30, lbfgsThres: 4 }, { eps: 1e-5, maxDepth: 12, lbfgsThres: 4, ls: true }]) {
        const reference = refBroyden(map, new Float64Array(batch * d), { ...options, stopMode: 'abs', returnFinal: false });
        for (const fused of [false, true]) {
          const out = await solve(f, q, { ...options, fused });
          expect(out.tnstep).toBe(reference.tnstep);
          closeTo(out.u, Array.from(reference.uStar), 1e-4);
        }
      }
    } finally {
      engine.planAs = undefined;
    }
    q.dispose();
    f.dispose();
  });

  it('maxDepth 1 and 2, a u0, a stall, full memory: the same on both paths', async () => {
    const { f } = block(40, 'auto');
    const q = engine.tensor(Float32Array.from(randomArray(random, 30 * 40, 1)), [30, 40]);
    const u0 = engine.tensor(Float32Array.from(randomArray(random, 30 * 40, 0.5)), [30, 40]);
    for (const options of [{ maxDepth: 1 }, { maxDepth: 2, u0 }, { eps: 0, maxDepth: 12, stallSteps: 1 }, { maxDepth: 12, lbfgsThres: null }]) {
      const fused = await solve(f, q, { ...options, fused: true });
      const generic = await solve(f, q, { ...options, fused: false });
      expect([fused.tnstep, fused.stats.nstep, fused.stats.status]).toEqual([generic.tnstep, generic.stats.nstep, generic.stats.status]);
      closeTo(fused.u, generic.u, 1e-5);
    }
    u0.dispose();
    q.dispose();
    f.dispose();
  });
});
