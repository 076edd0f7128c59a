// The fused solver steps (lib/step.wgsl): an iteration's bookkeeping moves into the kernels around
// the evaluation — Picard's into the kernel after it (shaders/picard_step.wgsl) or into the dense
// product's prologue and epilogue (shaders/picard_dense_step.wgsl); Anderson's into the step before
// it (anderson_step.wgsl) and the measurement after it (anderson_measure.wgsl, or the dense
// product's epilogue, anderson_dense_step.wgsl). Same rules as the separate kernels: each path must
// give the same counts and trace as the others and the float64 reference's (Picard's iterates
// bit-identical; Anderson's α depends on sums the paths group differently).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anderson, implicitBlock, picard, type Engine, type Solver, type SolverOptions, type Tensor } from '../src';
import { refAnderson, refBlockMap, refPicard } from '../src/reference';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { expectPicardPathsAgree } from './helpers/picard-paths';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const random = rng(11);

function block(d: number, forwardKernel: 'auto' | 'matmul') {
  const weight = Float32Array.from(randomArray(random, d * d, 0.6 / Math.sqrt(d)));
  const bias = Float32Array.from(randomArray(random, d, 0.1));
  return { f: implicitBlock(engine, { weight, bias, forwardKernel }), weight, bias };
}

async function solve(f: ReturnType<typeof implicitBlock>, q: Tensor, options: SolverOptions) {
  const before = engine.counters.dispatches;
  const r = await picard(f, q, { trace: true, ...options });
  const out = { u: Array.from(await r.uStar.read()), prev: Array.from(await r.uPrev.read()), tnstep: r.tnstep, stats: r.stats, dispatches: engine.counters.dispatches - before };
  r.dispose();
  return out;
}

describe('fused Picard steps', () => {
  // [d, batch, forwardKernel]: batch × d past the whole-iteration kernel's 1024 values, so fused
  // Picard takes the dense step; 'auto' is the few-row product on this (CPU) adapter (vec4 loads of
  // the weight at d = 40, the scalar body at d = 42, the one-row body at batch 1: d = 260, two
  // workgroups, the second with one quad of columns), 'matmul' the tiled one.
  const cases = [[40, 30, 'auto'], [42, 25, 'auto'], [36, 33, 'matmul'], [260, 1, 'auto']] as const;

  it.each(cases)('d = %i, batch %i (%s): the dense step, the generic step and the float64 reference agree', async (d, batch, forwardKernel) => {
    const { f, weight, bias } = block(d, forwardKernel);
    // The body each case is meant to cover.
    const body = f.fusedPicard?.(batch)?.kind === 'dense' ? f.fusedPicard(batch)?.product?.body : undefined;
    expect(body).toBe(forwardKernel === 'matmul' ? 'tiled' : d % 4 !== 0 ? 'rows' : batch === 1 ? 'row' : 'rows4');
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const all = [{ eps: 1e-5, maxDepth: 60 }, { eps: 1e-4, maxDepth: 9, stopMode: 'rel' as const, returnFinal: true }];
    // The tiled product runs 256-thread workgroups, slow on a CPU: one option set there.
    for (const options of forwardKernel === 'matmul' ? all.slice(1) : all) {
      const fused = await solve(f, q, { ...options, fused: true });
      const generic = await solve(f, q, { ...options, fused: false });
      expectPicardPathsAgree(fused, generic, { d, batch, weight, bias, qd }, options);
    }
    q.dispose();
    f.dispose();
  });

  it('a small state as on a GPU (whole iterations in one workgroup) and on this CPU adapter (the dense step): bit-identical to the generic step and the reference', async () => {
    // d = 24, batch 3: within the whole-iteration kernel's limits. A CPU adapter takes the dense
    // step instead (its one workgroup is one CPU thread); engine.planAs = 'gpu' makes the GPU's choice here.
    const d = 24;
    const batch = 3;
    const { f, weight, bias } = block(d, 'auto');
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const options = { eps: 1e-5, maxDepth: 40, checkEvery: 8 };
    const generic = await solve(f, q, { ...options, fused: false });
    const dense = await solve(f, q, { ...options, fused: true });
    engine.planAs = 'gpu';
    const whole = await solve(f, q, { ...options, fused: true }).finally(() => {
      engine.planAs = undefined;
    });
    const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
    const reference = refPicard(map, new Float64Array(batch * d), { eps: options.eps, maxDepth: options.maxDepth, stopMode: 'abs', returnFinal: false });
    for (const path of [dense, whole]) {
      expect(path.tnstep).toBe(reference.tnstep);
      expect([path.tnstep, path.stats.nstep, path.stats.status]).toEqual([generic.tnstep, generic.stats.nstep, generic.stats.status]);
      path.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-5));
    }
    expect(dense.u).toEqual(generic.u);
    // Whole iterations: one dispatch per checkEvery iterations; the dense step: one per iteration.
    expect(whole.dispatches).toBeLessThan(dense.dispatches / 4);
    q.dispose();
    f.dispose();
  });

  it.each(cases)('d = %i, batch %i (%s): dispatches per iteration, fused and with fused: false', async (d, batch, forwardKernel) => {
    const { f } = block(d, forwardKernel);
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * d, 1)), [batch, d]);
    const perStep = async (solver: Solver, fused: boolean) => {
      // eps = 0: every step runs; the difference of two depths is their iterations' dispatches.
      const count = async (maxDepth: number) => {
        const before = engine.counters.dispatches;
        (await solver(f, q, { eps: 0, maxDepth, checkEvery: 5, fused })).dispose();
        return engine.counters.dispatches - before;
      };
      const [short, long] = [await count(10), await count(30)];
      return (long - short) / 20;
    };
    // Picard: the dense step alone, or the layer's kernel and the step kernel.
    expect(await perStep(picard, true)).toBe(1);
    expect(await perStep(picard, false)).toBe(2);
    // Anderson: the step (Gram row, α, mix) and the evaluation that measures itself, or the
    // step, the layer's kernel and the measurement.
    expect(await perStep(anderson, true)).toBe(2);
    expect(await perStep(anderson, false)).toBe(3);
    q.dispose();
    f.dispose();
  });

  it.each(cases)('d = %i, batch %i (%s): Anderson fused and unfused agree with the float64 reference', async (d, batch, forwardKernel) => {
    const { f, weight, bias } = block(d, forwardKernel);
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const map = refBlockMap({ d, w: Float64Array.from(weight), b: Float64Array.from(bias) }, Float64Array.from(qd));
    for (const options of [{ eps: 1e-4, maxDepth: 30, windowSize: 3 }, { eps: 0, maxDepth: 9, windowSize: 2, restarting: true, mixingParam: 0.7 }]) {
      const reference = refAnderson(map, new Float64Array(batch * d), options);
      for (const fused of [true, false]) {
        const r = await anderson(f, q, { ...options, fused, trace: true });
        expect(r.tnstep).toBe(reference.tnstep);
        const u = await r.uStar.read();
        u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
        r.stats.trace?.abs.forEach((a, i) => expect(Math.abs(a - reference.trace.abs[i])).toBeLessThan(1e-2 * reference.trace.abs[i] + 1e-5));
        r.dispose();
      }
    }
    q.dispose();
    f.dispose();
  });

  it('on a CPU adapter a dense step of more than 8 workgroups gives way to the generic step', async () => {
    expect(engine.cpuAdapter).toBe(true);
    // d = 40, batch 64: the few-row product has 16 workgroups (4 rows each).
    const { f } = block(40, 'auto');
    const q = engine.tensor(Float32Array.from(randomArray(random, 64 * 40, 1)), [64, 40]);
    const count = async (maxDepth: number) => {
      const before = engine.counters.dispatches;
      (await picard(f, q, { eps: 0, maxDepth, checkEvery: 5 })).dispose();
      return engine.counters.dispatches - before;
    };
    const [short, long] = [await count(10), await count(30)];
    expect((long - short) / 20).toBe(2);
    q.dispose();
    f.dispose();
  });

  it('maxDepth 1 and 2, a u0, a stall: the same on both paths', async () => {
    const { f } = block(40, 'auto');
    const q = engine.tensor(Float32Array.from(randomArray(random, 30 * 40, 1)), [30, 40]);
    const u0 = engine.tensor(Float32Array.from(randomArray(random, 30 * 40, 0.5)), [30, 40]);
    for (const options of [{ maxDepth: 1 }, { maxDepth: 2, u0 }, { eps: 0, maxDepth: 50, stallSteps: 2 }]) {
      const fused = await solve(f, q, { ...options, fused: true });
      const generic = await solve(f, q, { ...options, fused: false });
      expect(fused.u).toEqual(generic.u);
      expect([fused.tnstep, fused.stats.nstep, fused.stats.status]).toEqual([generic.tnstep, generic.stats.nstep, generic.stats.status]);
    }
    u0.dispose();
    q.dispose();
    f.dispose();
  });
});
