// The fused steps on a split-k dense product (few rows on a GPU: the layer's forward is a split
// product then a combine): the combine folds into the next dispatch. Picard: one dispatch per
// iteration (picard_split_step.wgsl), iterates bit-identical to the layer's own forward on the same
// plan (fused: false); Anderson: two (anderson_split_step.wgsl, anderson_split_measure.wgsl);
// Broyden: two (broyden_dense_step.wgsl on the slices body, lib/gemm_slices.wgsl, then decide), or
// where that kernel does not run three (broyden_split_step.wgsl, broyden_split_measure.wgsl,
// decide). Counts exact, results as the float64 reference's; the scalar body (d = 101, 261) and the
// vec4 body (d = 260, 1024), on this CPU adapter's plan and on a GPU's (engine.planAs = 'gpu').
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { anderson, broyden, Engine, implicitBlock, picard, type Solver, type SolverOptions, type Tensor } from '../src';
import { refAnderson, refBlockMap, refBroyden } from '../src/reference';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { platform } from '../src/platform';
import { expectPicardPathsAgree } from './helpers/picard-paths';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());
afterEach(() => {
  engine.planAs = undefined;
});

const random = rng(23);

/** A tanh block of d features forced to split-k, a random Qd of `batch` rows, and its float64 map. */
function block(d: number, batch = 1) {
  const weight = Float32Array.from(randomArray(random, d * d, 0.6 / Math.sqrt(d)));
  const bias = Float32Array.from(randomArray(random, d, 0.1));
  const qd = Float32Array.from(randomArray(random, batch * d, 1));
  const f = implicitBlock(engine, { weight, bias, forwardKernel: 'split-k' });
  const q = engine.tensor(qd, [batch, d]);
  const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
  const dispose = () => {
    q.dispose();
    f.dispose();
  };
  return { f, q, weight, bias, qd, map, dispose };
}

/** Both paths reach the reference's tnstep and fixed point; a fused rerun gives the same bits. */
function expectAsReference(fused: Outcome, again: Outcome, generic: Outcome, reference: { tnstep: number; uStar: Float64Array }): void {
  expect(again.u).toEqual(fused.u);
  for (const path of [fused, generic]) {
    expect(path.tnstep).toBe(reference.tnstep);
    path.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
  }
}

type Outcome = Awaited<ReturnType<typeof solve>>;

async function solve(solver: Solver, f: ReturnType<typeof implicitBlock>, q: Tensor, options: SolverOptions) {
  const before = engine.counters.dispatches;
  const r = await solver(f, q, { trace: true, ...options });
  const out = { u: Array.from(await r.uStar.read()), prev: Array.from(await r.uPrev.read()), tnstep: r.tnstep, stats: r.stats, dispatches: engine.counters.dispatches - before };
  r.dispose();
  return out;
}

/** Dispatches per iteration: the difference of two depths with eps = 0 (every step runs). */
async function perIteration(solver: Solver, f: ReturnType<typeof implicitBlock>, q: Tensor, options: SolverOptions, checkEvery = 1): Promise<number> {
  const count = async (maxDepth: number) => {
    const before = engine.counters.dispatches;
    (await solver(f, q, { ...options, eps: 0, maxDepth, checkEvery })).dispose();
    return engine.counters.dispatches - before;
  };
  const [short, long] = [await count(4), await count(8)];
  return (long - short) / 4;
}

describe('fused steps on a split-k product', () => {
  // [d, batch, planAs], few rows as on a GPU: d = 261 (not a multiple of 4: the
  // scalar body; 8 slices of 33, the last 30) and d = 260 (the vec4 body; 8 slices of 33, the last
  // 29), both past the whole-iteration kernel's state. Broyden also on this CPU adapter's plan
  // (forced split-k: d = 101, the scalar body, 3 slices of 34, 34, 33), where Picard and Anderson
  // keep their kernels without split steps (they measured slower there).
  const cases = [[261, 2, 'gpu'], [260, 1, 'gpu']] as const;
  const broydenCases = [[101, 2, undefined], [260, 1, 'gpu'], [261, 5, 'gpu']] as const;

  it.each(cases)('d = %i, batch %i (planAs %s): Picard is one dispatch per iteration, bit-identical to fused: false and the reference', async (d, batch, planAs) => {
    engine.planAs = planAs;
    const { f, q, weight, bias, qd, dispose } = block(d, batch);
    expect(f.fusedPicard?.(batch)?.product?.body).toBe(d % 4 === 0 ? 'split4' : 'split');
    // checkEvery 1 and 5: one dispatch per iteration either way (not the whole-iteration kernel,
    // which runs checkEvery iterations per dispatch).
    expect(await perIteration(picard, f, q, { fused: true })).toBe(1);
    expect(await perIteration(picard, f, q, { fused: true }, 5)).toBe(1);
    expect(await perIteration(picard, f, q, { fused: false })).toBe(3);
    for (const options of [{ eps: 1e-5, maxDepth: 60 }, { eps: 1e-4, maxDepth: 9, stopMode: 'rel' as const, returnFinal: true, checkEvery: 1 }]) {
      const fused = await solve(picard, f, q, { ...options, fused: true });
      const again = await solve(picard, f, q, { ...options, fused: true });
      const generic = await solve(picard, f, q, { ...options, fused: false });
      expect(again.u).toEqual(fused.u);
      expectPicardPathsAgree(fused, generic, { d, batch, weight, bias, qd }, options);
    }
    dispose();
  });

  it.each(cases)('d = %i, batch %i (planAs %s): Anderson is two dispatches per iteration, as fused: false and the reference', async (d, batch, planAs) => {
    engine.planAs = planAs;
    const { f, q, map, dispose } = block(d, batch);
    // The step (mix inside the split product) and the measurement (combine): 2; generic: the step,
    // the split product, the combine and the measurement.
    expect(await perIteration(anderson, f, q, { fused: true })).toBe(2);
    expect(await perIteration(anderson, f, q, { fused: true }, 5)).toBe(2);
    expect(await perIteration(anderson, f, q, { fused: false })).toBe(4);
    for (const options of [{ eps: 1e-4, maxDepth: 30, windowSize: 3 }, { eps: 0, maxDepth: 9, windowSize: 2, restarting: true, mixingParam: 0.7, checkEvery: 1 }]) {
      const reference = refAnderson(map, new Float64Array(batch * d), options);
      const fused = await solve(anderson, f, q, { ...options, fused: true });
      const generic = await solve(anderson, f, q, { ...options, fused: false });
      expectAsReference(fused, await solve(anderson, f, q, { ...options, fused: true }), generic, reference);
      for (const path of [fused, generic]) {
        path.stats.trace?.abs.forEach((a, i) => expect(Math.abs(a - reference.trace.abs[i])).toBeLessThan(1e-2 * reference.trace.abs[i] + 1e-5));
      }
    }
    dispose();
  });

  // Broyden on a GPU's plan: the dense step on the slices body (k split inside each workgroup,
  // FusedProduct.whole: every output complete where the epilogue measures it), then the decide
  // kernel: 2, and with the line search 9 (8 trials of the dense step, decide). On this CPU
  // adapter's plan (d = 101, 13 workgroups of the slices body: more than a dense step runs here)
  // the split step (the advance as the split product's operand), the combining measurement and
  // decide: 3, with the line search the generic kernels (8 trials of (trial point, 2, residual
  // sums, decision), finalize and the 3). Generic: the split product, the combine, measure,
  // decide, advance.
  it.each(broydenCases)('d = %i, batch %i (planAs %s): Broyden is two dispatches per iteration on the slices body (9 with the line search), three on the split step, as fused: false and the reference', async (d, batch, planAs) => {
    engine.planAs = planAs;
    const { f, q, map, dispose } = block(d, batch);
    const whole = f.fusedPicard?.(batch)?.product?.whole;
    expect(whole?.body).toBe('slices');
    expect(whole?.constants.GEMM_VEC4).toBe(d % 4 === 0 ? 1 : 0);
    const slices = planAs === 'gpu';
    expect(await perIteration(broyden, f, q, { fused: true })).toBe(slices ? 2 : 3);
    expect(await perIteration(broyden, f, q, { fused: true }, 5)).toBe(slices ? 2 : 3);
    expect(await perIteration(broyden, f, q, { fused: false })).toBe(5);
    expect(await perIteration(broyden, f, q, { fused: true, ls: true })).toBe(slices ? 9 : 44);
    // The generic line search (44) once: it is the same kernels on every plan.
    if (d === 101) expect(await perIteration(broyden, f, q, { fused: false, ls: true })).toBe(44);
    for (const options of [{ eps: 1e-5, maxDepth: 30 }, { eps: 1e-5, maxDepth: 20, ls: true, checkEvery: 1 }]) {
      const reference = refBroyden(map, new Float64Array(batch * d), { ...options, stopMode: 'abs', returnFinal: false });
      const fused = await solve(broyden, f, q, { ...options, fused: true });
      const generic = await solve(broyden, f, q, { ...options, fused: false });
      expectAsReference(fused, await solve(broyden, f, q, { ...options, fused: true }), generic, reference);
    }
    // The factors (column block 0 stores each slice's share of the advance), compared early: they
    // grow sensitive to rounding near convergence (the two paths sum in different orders: 3e-5 of
    // the largest on one CPU, so 1e-3 of it; a slice left out of the sum moves them by its share).
    const factors = async (fused: boolean) => {
      const r = await broyden(f, q, { eps: 0, maxDepth: 6, lbfgsThres: 4, returnB: true, fused });
      const us = Array.from(await (r.B as NonNullable<typeof r.B>).Us.read());
      const valid = r.B?.validMask;
      r.dispose();
      return { us, valid };
    };
    const [fusedB, genericB] = [await factors(true), await factors(false)];
    expect(fusedB.valid).toEqual(genericB.valid);
    const scale = genericB.us.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(scale).toBeGreaterThan(0);
    expect(fusedB.us.reduce((m, v, i) => Math.max(m, Math.abs(v - genericB.us[i])), 0)).toBeLessThan(1e-3 * scale);
    dispose();
  });

  it("d = 1024, batch 1 on a GPU's plan ('auto': split-k, the vec4 body): Picard 1, Anderson 2, Broyden 2 (9 with the line search) dispatches per iteration; Broyden as the reference", async () => {
    engine.planAs = 'gpu';
    const d = 1024;
    const weight = Float32Array.from(randomArray(random, d * d, 0.6 / Math.sqrt(d)));
    const bias = Float32Array.from(randomArray(random, d, 0.1));
    const f = implicitBlock(engine, { weight, bias });
    const qd = Float32Array.from(randomArray(random, d, 1));
    const q = engine.tensor(qd, [1, d]);
    const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
    expect(f.fusedPicard?.(1)?.product?.body).toBe('split4');
    expect(await perIteration(picard, f, q, { fused: true })).toBe(1);
    expect(await perIteration(anderson, f, q, { fused: true })).toBe(2);
    expect(await perIteration(broyden, f, q, { fused: true })).toBe(2);
    expect(await perIteration(broyden, f, q, { fused: true, ls: true })).toBe(9);
    // The reference without the line search (its trials are the same kernel at d = 260, 261 above).
    for (const options of [{ eps: 1e-5, maxDepth: 16 }]) {
      const reference = refBroyden(map, new Float64Array(d), { ...options, stopMode: 'abs', returnFinal: false });
      const fused = await solve(broyden, f, q, { ...options, fused: true });
      expect(fused.tnstep).toBe(reference.tnstep);
      fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
      expect((await solve(broyden, f, q, { ...options, fused: true })).u).toEqual(fused.u);
    }
    q.dispose();
    f.dispose();
  });

  // 10 (as Chromium's SwiftShader): Broyden's dense step on the slices body (10) runs; 9: its split step (8).
  it.each([[10, 2], [9, 3]])('a device that allows %i storage buffers per stage: Broyden takes %i dispatches per iteration (and at 10 Picard and Anderson keep the generic kernels)', async (limit, broydenCount) => {
    const gpu = platform.gpu ? await platform.gpu() : undefined;
    const adapter = await gpu?.requestAdapter();
    if (!adapter) throw new Error('no adapter');
    const device = await adapter.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: limit } });
    const small = Engine.fromDevice(device);
    small.planAs = 'gpu';
    try {
      expect(small.device.limits.maxStorageBuffersPerShaderStage).toBe(limit);
      const d = 260;
      const f = implicitBlock(small, {
        weight: Float32Array.from(randomArray(random, d * d, 0.6 / Math.sqrt(d))), bias: Float32Array.from(randomArray(random, d, 0.1)), forwardKernel: 'split-k',
      });
      const q = small.tensor(Float32Array.from(randomArray(random, d, 1)), [1, d]);
      const per = async (solver: Solver) => {
        const count = async (maxDepth: number) => {
          const before = small.counters.dispatches;
          (await solver(f, q, { eps: 0, maxDepth, checkEvery: 1 })).dispose();
          return small.counters.dispatches - before;
        };
        const [short, long] = [await count(4), await count(8)];
        return (long - short) / 4;
      };
      // Picard and Anderson at the larger limit (the smaller one changes only Broyden's choice).
      if (limit === 10) {
        expect(await per(picard)).toBe(3);
        expect(await per(anderson)).toBe(4);
      }
      expect(await per(broyden)).toBe(broydenCount);
      q.dispose();
      f.dispose();
    } finally {
      small.destroy();
      device.destroy();
    }
  });

  it('on this CPU adapter (forced split-k, d = 101): Picard and Anderson without split steps', async () => {
    const { f, q, dispose } = block(101, 2);
    expect(f.fusedPicard?.(2)?.product?.body).toBe('split');
    // Picard: the whole-iteration kernel (checkEvery iterations per dispatch); Anderson: the generic kernels.
    expect(await perIteration(picard, f, q, { fused: true }, 4)).toBe(0.25);
    expect(await perIteration(anderson, f, q, { fused: true })).toBe(4);
    dispose();
  });
});
