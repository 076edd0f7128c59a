// Layers whose f ends in a library stage kernel (ImplicitLayer.fusedStageTail): the solver runs the
// layer's kernels before it, then that kernel with the iteration's bookkeeping around it.
// A group or layer normalisation: shaders/picard_norm_step.wgsl (Anderson and Broyden: the
// measurement, anderson_norm_measure.wgsl, broyden_norm_step.wgsl), so an iteration of a layer of
// k kernels is k dispatches for Picard, k + 1 for Anderson and k + 2 for Broyden (k + 1 when the
// first kernel takes the advance, as a fused linear does), one fewer than the generic kernels.
// A 3×3 convolution: the same with shaders/picard_conv_step.wgsl, anderson_conv_measure.wgsl,
// broyden_conv_step.wgsl. Checked against the generic path
// (`fused: false`; Picard's iterates bit for bit) and the float64 reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qd, add, anderson, broyden, conv2d, dropout, groupNorm, layerNorm, linear, picard, relu, sequential, tanh, type Engine, type Sequential, type SolverOptions, type Tensor } from '../src';
import { refActivationStage, refAddQdStage, refAnderson, refConv2dForward, refGroupNormForward, refPicard, refSequentialForward, type RefConv2d, type RefLinear, type RefStage } from '../src/reference';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { dispatchesPerIteration, expectBroydenAgrees, refLinearStage } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const random = rng(61);
const forwardOnly = (forward: (x: Float64Array) => Float64Array): RefStage => ({ forward, vjp: () => { throw new Error('not needed'); } });

/** The MDEQ cell conv2d(C → C) + add(Qd), groupNorm(2 groups) + relu on height × width images: two kernels. */
function mdeqCell(height: number, width: number, C: number) {
  const conv: RefConv2d = { height, width, inChannels: C, outChannels: C, weight: Float64Array.from(randomArray(random, 9 * C * C, 0.15)), bias: Float64Array.from(randomArray(random, C, 0.1)) };
  const norm = { groups: 2, gamma: Float64Array.from(randomArray(random, C, 0.3)).map((v) => v + 1), beta: Float64Array.from(randomArray(random, C, 0.2)), eps: 1e-5 };
  const size = height * width * C;
  const f = sequential(
    conv2d(engine, { height, width, inChannels: C, outChannels: C, weight: Float32Array.from(conv.weight), bias: Float32Array.from(conv.bias) }),
    add(Qd),
    groupNorm(engine, { groups: 2, gamma: Float32Array.from(norm.gamma), beta: Float32Array.from(norm.beta) }),
    relu(),
  );
  const stages = [forwardOnly((x) => refConv2dForward(conv, x)), refAddQdStage, forwardOnly((x) => refGroupNormForward(norm, x, x.length / size)), refActivationStage('relu')];
  return { f, size, map: (qd: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qd) };
}

async function solve(f: Sequential, q: Tensor, options: SolverOptions) {
  const r = await picard(f, q, { trace: true, ...options });
  const out = { u: Array.from(await r.uStar.read()), prev: Array.from(await r.uPrev.read()), tnstep: r.tnstep, stats: r.stats };
  r.dispose();
  return out;
}

/** Picard on the norm path against the generic one (bit for bit) and the float64 reference. */
async function expectPicardAgrees(f: Sequential, q: Tensor, qd: Float32Array, map: (qd: Float64Array) => (u: Float64Array) => Float64Array): Promise<void> {
  for (const options of [{ eps: 1e-5, maxDepth: 60 }, { eps: 1e-4, maxDepth: 7, stopMode: 'rel' as const, returnFinal: true, checkEvery: 2 }]) {
    const fused = await solve(f, q, options);
    const generic = await solve(f, q, { ...options, fused: false });
    // The same kernels' values: the norm step normalises as the stage's forward does.
    expect(fused.u).toEqual(generic.u);
    expect(fused.prev).toEqual(generic.prev);
    expect(fused.tnstep).toBe(generic.tnstep);
    expect(fused.stats.status).toBe(generic.stats.status);
    const reference = refPicard(map(Float64Array.from(qd)), new Float64Array(qd.length), {
      eps: options.eps, maxDepth: options.maxDepth, stopMode: options.stopMode ?? 'abs', returnFinal: options.returnFinal ?? false,
    });
    expect(fused.tnstep).toBe(reference.tnstep);
    fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
    // The residuals measured per (row, group) partials: the reference's to float32 rounding.
    fused.stats.trace?.abs.forEach((a, i) => expect(Math.abs(a - reference.trace.abs[i])).toBeLessThan(1e-3 * reference.trace.abs[i] + 1e-5));
  }
}

/** Anderson on the norm path against the generic one and the float64 reference. */
async function expectAndersonAgrees(f: Sequential, q: Tensor, qd: Float32Array, map: (qd: Float64Array) => (u: Float64Array) => Float64Array): Promise<void> {
  const options = { eps: 1e-5, maxDepth: 40 };
  const run = async (fused: boolean) => {
    const r = await anderson(f, q, { ...options, fused });
    const out = { u: Array.from(await r.uStar.read()), tnstep: r.tnstep };
    r.dispose();
    return out;
  };
  const fused = await run(true);
  const generic = await run(false);
  const reference = refAnderson(map(Float64Array.from(qd)), new Float64Array(qd.length), options);
  expect(fused.tnstep).toBe(generic.tnstep);
  expect(fused.tnstep).toBe(reference.tnstep);
  fused.u.forEach((v, i) => {
    expect(Math.abs(v - generic.u[i])).toBeLessThan(1e-5);
    expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4);
  });
}

/**
 * A layer that is one stage kernel: Picard 1 dispatch per iteration, Anderson 2, Broyden 3 (the
 * generic paths one more each), every solver as the generic path and the float64 reference.
 */
async function expectWholeLayerSteps(f: Sequential, q: Tensor, qd: Float32Array, map: (qd: Float64Array) => (u: Float64Array) => Float64Array): Promise<void> {
  for (const [solver, fused] of [[picard, 1], [anderson, 2], [broyden, 3]] as const) {
    expect(await dispatchesPerIteration(solver, f, q)).toBe(fused);
    expect(await dispatchesPerIteration(solver, f, q, { fused: false })).toBe(fused + 1);
  }
  await expectPicardAgrees(f, q, qd, map);
  await expectAndersonAgrees(f, q, qd, map);
  await expectBroydenAgrees(f, q, qd, map);
}

describe('a layer whose f ends in a normalisation', () => {
  it.each([
    ['Picard', picard, 2, 3, expectPicardAgrees, 'the generic path\'s iterates bit for bit'],
    ['Anderson', anderson, 3, 4, expectAndersonAgrees, 'anderson_step, the conv, the norm measuring'],
    ['Broyden', broyden, 4, 5, expectBroydenAgrees, 'the conv at the stored advance, the norm measuring, decide, advance'],
  ] as const)('the MDEQ cell (2 kernels): %s %i dispatches per iteration (generic: %i), as the generic path and the float64 reference (%s)', async (name, solver, fused, generic, agrees, _why) => {
    const { f, size, map } = mdeqCell(3, 3, 4);
    const batch = 2;
    const qd = Float32Array.from(randomArray(random, batch * size, 1));
    const q = engine.tensor(qd, [batch, size]);
    expect(f.groups).toBe(2);
    expect(await dispatchesPerIteration(solver, f, q)).toBe(fused);
    expect(await dispatchesPerIteration(solver, f, q, { fused: false })).toBe(generic);
    // With the line search, Broyden's generic kernels.
    if (name === 'Broyden') expect(await dispatchesPerIteration(broyden, f, q, { ls: true })).toBe(await dispatchesPerIteration(broyden, f, q, { ls: true, fused: false }));
    await agrees(f, q, qd, map);
    q.dispose();
    f.dispose();
  });

  it('a post-norm cell (linear, relu, linear, add(Qd), layerNorm: 3 kernels, the first a linear): Picard 3, Anderson 4, Broyden 4 (the first linear takes the advance: k + 1), as the generic path and the float64 reference', async () => {
    const [d, h, batch] = [24, 20, 2];
    const w1 = Float32Array.from(randomArray(random, d * h, 0.8 / Math.sqrt(d)));
    const w2 = Float32Array.from(randomArray(random, h * d, 0.8 / Math.sqrt(h)));
    const b1 = Float32Array.from(randomArray(random, h, 0.1));
    const b2 = Float32Array.from(randomArray(random, d, 0.1));
    const gamma = Float64Array.from(randomArray(random, d, 0.2)).map((v) => v + 0.5);
    const beta = Float64Array.from(randomArray(random, d, 0.2));
    const f = sequential(
      linear(engine, { weight: w1, bias: b1 }), relu(), linear(engine, { weight: w2, bias: b2 }), add(Qd),
      layerNorm(engine, { gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) }),
    );
    expect(f.groups).toBe(3);
    const l1: RefLinear = { inFeatures: d, outFeatures: h, W: Float64Array.from(w1), b: Float64Array.from(b1) };
    const l2: RefLinear = { inFeatures: h, outFeatures: d, W: Float64Array.from(w2), b: Float64Array.from(b2) };
    const refNorm = { groups: 1, gamma, beta, eps: 1e-5 };
    const stages = [refLinearStage(l1), refActivationStage('relu'), refLinearStage(l2), refAddQdStage, forwardOnly((x) => refGroupNormForward(refNorm, x, x.length / d))];
    const map = (qdv: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qdv);
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    expect(await dispatchesPerIteration(picard, f, q)).toBe(3);
    expect(await dispatchesPerIteration(anderson, f, q)).toBe(4);
    expect(await dispatchesPerIteration(broyden, f, q)).toBe(4);
    expect(await dispatchesPerIteration(broyden, f, q, { fused: false })).toBe(6);
    await expectPicardAgrees(f, q, qd, map);
    await expectAndersonAgrees(f, q, qd, map);
    await expectBroydenAgrees(f, q, qd, map);
    q.dispose();
    f.dispose();
  });

  it('a layerNorm that is the whole layer (layerNorm → tanh → add(Qd), one kernel): Picard 1 dispatch per iteration, Anderson 2, Broyden 3 (the norm reads the iterate itself: WHOLE_LAYER), as the generic path and the reference', async () => {
    const d = 20;
    const batch = 3;
    const gamma = Float64Array.from(randomArray(random, d, 0.3)).map((v) => v + 0.5);
    const beta = Float64Array.from(randomArray(random, d, 0.2));
    const f = sequential(layerNorm(engine, { gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) }), tanh(), add(Qd));
    expect(f.groups).toBe(1);
    const refNorm = { groups: 1, gamma, beta, eps: 1e-5 };
    const stages = [forwardOnly((x) => refGroupNormForward(refNorm, x, x.length / d)), refActivationStage('tanh'), refAddQdStage];
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    await expectWholeLayerSteps(f, q, qd, (qdv) => (u) => refSequentialForward(stages, u, qdv));
    q.dispose();
    f.dispose();
  });

  it("on a GPU's plan (residual partials as trees, not per thread): the MDEQ cell, every solver, as the generic path and the reference", async () => {
    engine.planAs = 'gpu';
    try {
      const { f, size, map } = mdeqCell(4, 3, 4);
      const batch = 5;
      const qd = Float32Array.from(randomArray(random, batch * size, 1));
      const q = engine.tensor(qd, [batch, size]);
      expect(await dispatchesPerIteration(picard, f, q)).toBe(2);
      expect(await dispatchesPerIteration(anderson, f, q)).toBe(3);
      expect(await dispatchesPerIteration(broyden, f, q)).toBe(4);
      await expectPicardAgrees(f, q, qd, map);
      await expectAndersonAgrees(f, q, qd, map);
      await expectBroydenAgrees(f, q, qd, map);
      q.dispose();
      f.dispose();
    } finally {
      engine.planAs = undefined;
    }
  });

  it('on a CPU adapter, more than 8 (row, group) workgroups keep the generic step; a chain with dropout too', async () => {
    const { f, size } = mdeqCell(3, 3, 4);
    const batch = 5; // 10 workgroups
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * size, 1)), [batch, size]);
    expect(await dispatchesPerIteration(picard, f, q)).toBe(3);
    expect(await dispatchesPerIteration(anderson, f, q)).toBe(4);
    expect(await dispatchesPerIteration(broyden, f, q)).toBe(5);
    const noisy = sequential({ featureSize: 12 }, layerNorm(engine, { gamma: new Float32Array(12).fill(1), beta: new Float32Array(12) }), dropout(0.2), add(Qd));
    const q2 = engine.tensor(Float32Array.from(randomArray(random, 24, 1)), [2, 12]);
    expect(await dispatchesPerIteration(picard, noisy, q2)).toBe(await dispatchesPerIteration(picard, noisy, q2, { fused: false }));
    for (const owned of [f, q, noisy, q2]) owned.dispose();
  });
});

describe('a layer whose f ends in a convolution', () => {
  const [height, width, C] = [3, 2, 3];
  const size = height * width * C;
  const convOf = () => {
    const conv: RefConv2d = { height, width, inChannels: C, outChannels: C, weight: Float64Array.from(randomArray(random, 9 * C * C, 0.2)), bias: Float64Array.from(randomArray(random, C, 0.1)) };
    const stage = () => conv2d(engine, { height, width, inChannels: C, outChannels: C, weight: Float32Array.from(conv.weight), bias: Float32Array.from(conv.bias) });
    return { stage, ref: forwardOnly((x) => refConv2dForward(conv, x)) };
  };

  it('a conv2d alone (conv2d → add(Qd) → tanh, one kernel): Picard 1 dispatch per iteration (generic: 2, the iterates bit for bit), Anderson 2, Broyden 3 (the convolution reads the iterate itself: WHOLE_LAYER), as the generic path and the float64 reference', async () => {
    const conv = convOf();
    const f = sequential(conv.stage(), add(Qd), tanh());
    expect(f.groups).toBe(1);
    const stages = [conv.ref, refAddQdStage, refActivationStage('tanh')];
    const batch = 3;
    const qd = Float32Array.from(randomArray(random, batch * size, 1));
    const q = engine.tensor(qd, [batch, size]);
    await expectWholeLayerSteps(f, q, qd, (qdv) => (u) => refSequentialForward(stages, u, qdv));
    q.dispose();
    f.dispose();
  });

  it.each([['a CPU', undefined], ["a GPU's", 'gpu']] as const)('layerNorm, then conv2d → add(Qd) → tanh (two kernels) on %s plan: Picard 2 dispatches per iteration (generic: 3), Anderson 3 (generic: 4), Broyden 3 (generic: 5), as the generic path and the reference', async (_name, plan) => {
    engine.planAs = plan;
    try {
      const conv = convOf();
      const gamma = Float64Array.from(randomArray(random, size, 0.2)).map((v) => v + 0.5);
      const beta = Float64Array.from(randomArray(random, size, 0.2));
      const f = sequential(layerNorm(engine, { gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) }), conv.stage(), add(Qd), tanh());
      expect(f.groups).toBe(2);
      const refNorm = { groups: 1, gamma, beta, eps: 1e-5 };
      const stages = [forwardOnly((x) => refGroupNormForward(refNorm, x, x.length / size)), conv.ref, refAddQdStage, refActivationStage('tanh')];
      const batch = 4;
      const qd = Float32Array.from(randomArray(random, batch * size, 1));
      const q = engine.tensor(qd, [batch, size]);
      const map = (qdv: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qdv);
      expect(await dispatchesPerIteration(picard, f, q)).toBe(2);
      expect(await dispatchesPerIteration(picard, f, q, { fused: false })).toBe(3);
      expect(await dispatchesPerIteration(anderson, f, q)).toBe(3);
      expect(await dispatchesPerIteration(anderson, f, q, { fused: false })).toBe(4);
      // The norm on the advance (the prefix's head), the convolution measuring, decide.
      expect(await dispatchesPerIteration(broyden, f, q)).toBe(3);
      expect(await dispatchesPerIteration(broyden, f, q, { fused: false })).toBe(5);
      await expectPicardAgrees(f, q, qd, map);
      await expectAndersonAgrees(f, q, qd, map);
      await expectBroydenAgrees(f, q, qd, map);
      q.dispose();
      f.dispose();
    } finally {
      engine.planAs = undefined;
    }
  });

  it('a residual cell of two convolutions (conv2d → relu, conv2d → add(Qd) → tanh): Picard 2, Anderson 3, Broyden 4 (the first convolution at the stored advance, the second measuring, decide, advance), as the generic path and the reference', async () => {
    const [c1, c2] = [convOf(), convOf()];
    const f = sequential(c1.stage(), relu(), c2.stage(), add(Qd), tanh());
    expect(f.groups).toBe(2);
    const stages = [c1.ref, refActivationStage('relu'), c2.ref, refAddQdStage, refActivationStage('tanh')];
    const map = (qdv: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qdv);
    const batch = 3;
    const qd = Float32Array.from(randomArray(random, batch * size, 1));
    const q = engine.tensor(qd, [batch, size]);
    for (const [solver, fused, generic] of [[picard, 2, 3], [anderson, 3, 4], [broyden, 4, 5]] as const) {
      expect(await dispatchesPerIteration(solver, f, q)).toBe(fused);
      expect(await dispatchesPerIteration(solver, f, q, { fused: false })).toBe(generic);
    }
    await expectPicardAgrees(f, q, qd, map);
    await expectAndersonAgrees(f, q, qd, map);
    await expectBroydenAgrees(f, q, qd, map);
    q.dispose();
    f.dispose();
  });
});
