// Layers of several kernels whose f ends in a fused linear (FusedPicardPath.prefix): the solver
// runs the layer's kernels before the product, then the product with the iteration's bookkeeping
// around it (shaders/picard_prefix_step.wgsl, anderson_prefix_step.wgsl, broyden_prefix_step.wgsl),
// so an iteration of a layer of k kernels is k dispatches for Picard and k + 1 for Anderson, one
// fewer than the generic kernels, and k + 1 for Broyden when the layer's first kernel is a fused
// linear too (broyden_prefix_head.wgsl computes its input, the advance, on the fly), a
// normalisation (broyden_prefix_norm_head.wgsl stores the advance, then reads it) or elementwise
// stages (the advance kernel applies them: broyden_advance.wgsl's head_main), else k + 2.
// Checked against the generic path (`fused: false`) and the float64 reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { add, anderson, broyden, conv2d, dropout, gelu, groupNorm, layerNorm, linear, picard, relu, sequential, tanh, type Engine, type SolverOptions, type Solver, type Tensor } from '../src';
import { refActivationStage, refAddQdStage, refAnderson, refBroyden, refConv2dForward, refGroupNormForward, refPicard, refSequentialForward, type RefConv2d, type RefLinear, type RefStage } from '../src/reference';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { dispatchesPerIteration, expectBroydenAgrees, refLinearStage } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const random = rng(23);

/** sequential(linear(d → h), relu(), linear(h → d), add(Qd), tanh()): two kernels, the last a fused linear. */
function chain(d: number, h: number, withDropout = false) {
  const w1 = Float32Array.from(randomArray(random, d * h, 0.8 / Math.sqrt(d)));
  const b1 = Float32Array.from(randomArray(random, h, 0.1));
  const w2 = Float32Array.from(randomArray(random, h * d, 0.8 / Math.sqrt(h)));
  const b2 = Float32Array.from(randomArray(random, d, 0.1));
  const f = withDropout
    ? sequential(linear(engine, { weight: w1, bias: b1 }), relu(), dropout(0.2), linear(engine, { weight: w2, bias: b2 }), add(), tanh())
    : sequential(linear(engine, { weight: w1, bias: b1 }), relu(), linear(engine, { weight: w2, bias: b2 }), add(), tanh());
  const l1: RefLinear = { inFeatures: d, outFeatures: h, W: Float64Array.from(w1), b: Float64Array.from(b1) };
  const l2: RefLinear = { inFeatures: h, outFeatures: d, W: Float64Array.from(w2), b: Float64Array.from(b2) };
  const stages = [refLinearStage(l1), refActivationStage('relu'), refLinearStage(l2), refAddQdStage, refActivationStage('tanh')];
  return { f, map: (qd: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qd) };
}

/**
 * Three kernels, the first and last fused linears: sequential(linear(d → h), relu(), linear(h → h),
 * tanh(), linear(h → d), add(Qd), tanh()); or, with `leadingRelu`, relu() first (then the first
 * kernel is an elementwise one: four kernels).
 */
function longChain(d: number, h: number, leadingRelu = false) {
  const sizes: [number, number][] = [[d, h], [h, h], [h, d]];
  const layers = sizes.map(([inF, outF]) => ({
    weight: Float32Array.from(randomArray(random, inF * outF, 0.8 / Math.sqrt(inF))),
    bias: Float32Array.from(randomArray(random, outF, 0.1)),
    inF,
    outF,
  }));
  const [l1, l2, l3] = layers.map((l) => linear(engine, { weight: l.weight, bias: l.bias }));
  const body = [l1, relu(), l2, tanh(), l3, add(), tanh()];
  const f = leadingRelu ? sequential(relu(), ...body) : sequential(...body);
  const ref = layers.map((l): RefLinear => ({ inFeatures: l.inF, outFeatures: l.outF, W: Float64Array.from(l.weight), b: Float64Array.from(l.bias) }));
  const stages = [
    ...(leadingRelu ? [refActivationStage('relu')] : []),
    refLinearStage(ref[0]), refActivationStage('relu'), refLinearStage(ref[1]), refActivationStage('tanh'),
    refLinearStage(ref[2]), refAddQdStage, refActivationStage('tanh'),
  ];
  return { f, map: (qd: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qd) };
}

/**
 * A pre-norm chain, the normalisation first: layerNorm(d) (or, with `channels`, groupNorm over rows
 * of d / channels positions, 3 groups, then gelu in its kernel), linear(d → h), relu(),
 * linear(h → d), add(Qd), tanh(): three kernels, the last a fused linear.
 */
function normChain(d: number, h: number, channels?: number) {
  const C = channels ?? d;
  const groups = channels ? 3 : 1;
  const gamma = Float32Array.from(randomArray(random, C, 0.5)).map((v) => v + 1);
  const beta = Float32Array.from(randomArray(random, C, 0.2));
  const sizes: [number, number][] = [[d, h], [h, d]];
  const layers = sizes.map(([inF, outF]) => ({
    weight: Float32Array.from(randomArray(random, inF * outF, 0.8 / Math.sqrt(inF))),
    bias: Float32Array.from(randomArray(random, outF, 0.1)),
    inF,
    outF,
  }));
  const [l1, l2] = layers.map((l) => linear(engine, { weight: l.weight, bias: l.bias }));
  const norm = channels
    ? [groupNorm(engine, { groups, gamma, beta }), gelu()]
    : [layerNorm(engine, { gamma, beta })];
  const f = sequential({ featureSize: d }, ...norm, l1, relu(), l2, add(), tanh());
  const ref = layers.map((l): RefLinear => ({ inFeatures: l.inF, outFeatures: l.outF, W: Float64Array.from(l.weight), b: Float64Array.from(l.bias) }));
  const refNorm = { groups, gamma: Float64Array.from(gamma), beta: Float64Array.from(beta), eps: 1e-5 };
  const normStage: RefStage = { forward: (x) => refGroupNormForward(refNorm, x, x.length / d), vjp: () => { throw new Error('not needed'); } };
  const stages = [
    normStage, ...(channels ? [refActivationStage('gelu')] : []),
    refLinearStage(ref[0]), refActivationStage('relu'), refLinearStage(ref[1]), refAddQdStage, refActivationStage('tanh'),
  ];
  return { f, map: (qd: Float64Array) => (u: Float64Array) => refSequentialForward(stages, u, qd) };
}

async function solve(solver: Solver, f: ReturnType<typeof sequential>, q: Tensor, options: SolverOptions) {
  const before = engine.counters.dispatches;
  const r = await solver(f, q, { trace: true, ...options });
  const out = { u: Array.from(await r.uStar.read()), prev: Array.from(await r.uPrev.read()), tnstep: r.tnstep, stats: r.stats, dispatches: engine.counters.dispatches - before };
  r.dispose();
  return out;
}

/** Dispatches per iteration (test/helpers/layers.ts), with the solve's trace on as in `solve`. */
const perIteration = (solver: Solver, f: ReturnType<typeof sequential>, q: Tensor, options: SolverOptions): Promise<number> =>
  dispatchesPerIteration(solver, f, q, { trace: true, ...options });

describe('a layer of several kernels ending in a fused linear', () => {
  // [d, h, batch]: h ≠ d (the product's inner size is the prefix's), h % 4 = 0 and not.
  const cases = [[24, 20, 3], [20, 18, 2]] as const;

  it.each(cases)('d = %i, h = %i, batch %i: Picard k dispatches per iteration, Anderson k + 1, Broyden k + 1 (the first kernel a linear); the generic paths one more, Broyden\'s two more', async (d, h, batch) => {
    const { f } = chain(d, h);
    expect(f.groups).toBe(2);
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * d, 1)), [batch, d]);
    expect(await perIteration(picard, f, q, {})).toBe(2);
    expect(await perIteration(picard, f, q, { fused: false })).toBe(3);
    expect(await perIteration(anderson, f, q, {})).toBe(3);
    expect(await perIteration(anderson, f, q, { fused: false })).toBe(4);
    // The first linear with the advance on the fly (broyden_prefix_head.wgsl), the product
    // measuring (broyden_prefix_step.wgsl), decide; generic: the layer, measure, decide, advance.
    // With the line search the generic kernels either way.
    expect(await perIteration(broyden, f, q, {})).toBe(3);
    expect(await perIteration(broyden, f, q, { fused: false })).toBe(5);
    expect(await perIteration(broyden, f, q, { ls: true })).toBe(await perIteration(broyden, f, q, { ls: true, fused: false }));
    q.dispose();
    f.dispose();
  });

  it.each(cases)('d = %i, h = %i, batch %i: Picard gives the generic path\'s iterates bit for bit and the float64 reference\'s', async (d, h, batch) => {
    const { f, map } = chain(d, h);
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    for (const options of [{ eps: 1e-5, maxDepth: 60 }, { eps: 1e-4, maxDepth: 7, stopMode: 'rel' as const, returnFinal: true }]) {
      const fused = await solve(picard, f, q, options);
      const generic = await solve(picard, f, q, { ...options, fused: false });
      expect(fused.u).toEqual(generic.u);
      expect(fused.prev).toEqual(generic.prev);
      expect(fused.tnstep).toBe(generic.tnstep);
      expect(fused.stats.status).toBe(generic.stats.status);
      const reference = refPicard(map(Float64Array.from(qd)), new Float64Array(batch * d), {
        eps: options.eps, maxDepth: options.maxDepth, stopMode: options.stopMode ?? 'abs', returnFinal: options.returnFinal ?? false,
      });
      expect(fused.tnstep).toBe(reference.tnstep);
      fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-5));
    }
    q.dispose();
    f.dispose();
  });

  it.each(cases)('d = %i, h = %i, batch %i: Anderson agrees with the generic path and the float64 reference', async (d, h, batch) => {
    const { f, map } = chain(d, h);
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const options = { eps: 1e-5, maxDepth: 40 };
    const fused = await solve(anderson, f, q, options);
    const generic = await solve(anderson, f, q, { ...options, fused: false });
    const reference = refAnderson(map(Float64Array.from(qd)), new Float64Array(batch * d), { eps: options.eps, maxDepth: options.maxDepth });
    expect(fused.tnstep).toBe(generic.tnstep);
    expect(fused.tnstep).toBe(reference.tnstep);
    fused.u.forEach((v, i) => {
      expect(Math.abs(v - generic.u[i])).toBeLessThan(1e-5);
      expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-5);
    });
    q.dispose();
    f.dispose();
  });

  it.each(cases)('d = %i, h = %i, batch %i: Broyden agrees with the generic path and the float64 reference (tnstep, fixed point, factors)', async (d, h, batch) => {
    const { f, map } = chain(d, h);
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    await expectBroydenAgrees(f, q, qd, map);
    // The factors early (eps 0, six iterations): the dense kernel's measurement against the columns the advance stored.
    const factors = async (fused: boolean) => {
      const r = await broyden(f, q, { eps: 0, maxDepth: 6, lbfgsThres: 4, returnB: true, fused });
      const us = Array.from(await (r.B as NonNullable<typeof r.B>).Us.read());
      const vts = Array.from(await (r.B as NonNullable<typeof r.B>).VTs.read());
      r.dispose();
      return [...us, ...vts];
    };
    const [a, b] = [await factors(true), await factors(false)];
    const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(scale).toBeGreaterThan(0);
    expect(a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0)).toBeLessThan(1e-3 * scale);
    q.dispose();
    f.dispose();
  });

  it("on a GPU's plan (few rows: the product splits k across workgroups), Broyden's head and prefix step take the slices body: four fewer dispatches than the generic kernels, as the reference", async () => {
    engine.planAs = 'gpu';
    try {
      const [d, h, batch] = [64, 96, 1];
      const { f, map } = chain(d, h);
      const qd = Float32Array.from(randomArray(random, batch * d, 1));
      const q = engine.tensor(qd, [batch, d]);
      // Both products split k here (the split product, then the combine with relu or the tail): the
      // layer is 4 kernels, its prefix 2. The head on the slices body (the first linear whole, the
      // advance on the fly), the last product measuring on the slices body, decide: 3; generic:
      // the layer, measure, decide, advance: 7.
      expect(await perIteration(broyden, f, q, {})).toBe(3);
      expect(await perIteration(broyden, f, q, { fused: false })).toBe(7);
      // (The path exists once the layer has scratch for the batch: after its first solve.)
      expect(f.fusedPicard?.(batch)?.product?.split).toBeDefined();
      expect(f.fusedPicard?.(batch)?.product?.whole?.body).toBe('slices');
      const options = { eps: 1e-5, maxDepth: 30 };
      const fused = await solve(broyden, f, q, options);
      const reference = refBroyden(map(Float64Array.from(qd)), new Float64Array(batch * d), { ...options, stopMode: 'abs', returnFinal: false });
      expect(fused.tnstep).toBe(reference.tnstep);
      fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
      q.dispose();
      f.dispose();
    } finally {
      engine.planAs = undefined;
    }
  });

  it('three kernels, the first a linear: Broyden k + 1 = 4 dispatches (the head, the kernel after it, the product measuring, decide), as the generic path and the float64 reference; an elementwise first kernel too (the advance kernel applies it)', async () => {
    const [d, h, batch] = [20, 16, 3];
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    for (const leadingRelu of [false, true]) {
      const { f, map } = longChain(d, h, leadingRelu);
      const kernels = leadingRelu ? 4 : 3;
      expect(f.groups).toBe(kernels);
      expect(await perIteration(broyden, f, q, {})).toBe(kernels + 1);
      expect(await perIteration(broyden, f, q, { fused: false })).toBe(kernels + 3);
      await expectBroydenAgrees(f, q, qd, map);
      f.dispose();
    }
    q.dispose();
  });

  it.each([
    ['layerNorm', undefined],
    ['groupNorm (6 channels, 3 groups) → gelu', 6],
  ] as const)('%s first, then linear, relu, linear, add, tanh: Broyden k + 1 = 4 dispatches (the norm on the advance computed per element, the linear after it, the product measuring, decide), as the generic path and the float64 reference', async (_name, channels) => {
    // At most 8 (row, group) workgroups: a CPU adapter's limit for the head (SolveRun.fewGroups).
    const [d, h, batch] = [24, 20, 2];
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const { f, map } = normChain(d, h, channels);
    expect(f.groups).toBe(3);
    expect(await perIteration(broyden, f, q, {})).toBe(4);
    expect(await perIteration(broyden, f, q, { fused: false })).toBe(6);
    // Picard and Anderson take the prefix as it is: k and k + 1.
    expect(await perIteration(picard, f, q, {})).toBe(3);
    expect(await perIteration(anderson, f, q, {})).toBe(4);
    await expectBroydenAgrees(f, q, qd, map);
    f.dispose();
    q.dispose();
  });

  it("a layerNorm first, on a GPU's plan (more step workgroups, the rank-one sums as trees, a split first linear): Broyden k + 1 as the generic path and the float64 reference", async () => {
    engine.planAs = 'gpu';
    try {
      const [d, h, batch] = [64, 48, 5];
      const qd = Float32Array.from(randomArray(random, batch * d, 1));
      const q = engine.tensor(qd, [batch, d]);
      const { f, map } = normChain(d, h);
      // The layer's kernels (generic Picard: them and its step): the norm, the first linear split
      // (its product, then the combine with relu), the last linear: 4.
      const k = (await perIteration(picard, f, q, { fused: false })) - 1;
      expect(k).toBe(4);
      expect(await perIteration(broyden, f, q, {})).toBe(k + 1);
      expect(await perIteration(broyden, f, q, { fused: false })).toBe(k + 3);
      const options = { eps: 1e-5, maxDepth: 30 };
      const fused = await solve(broyden, f, q, options);
      const generic = await solve(broyden, f, q, { ...options, fused: false });
      const reference = refBroyden(map(Float64Array.from(qd)), new Float64Array(batch * d), { ...options, stopMode: 'abs', returnFinal: false });
      expect(fused.tnstep).toBe(reference.tnstep);
      expect(fused.tnstep).toBe(generic.tnstep);
      fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4));
      q.dispose();
      f.dispose();
    } finally {
      engine.planAs = undefined;
    }
  });

  it('two elementwise stages first (add(Qd), relu: two kernels of their own) go into the advance kernel together: Broyden k dispatches, as the generic path and the float64 reference', async () => {
    const [d, h, batch] = [20, 16, 3];
    const w1 = Float32Array.from(randomArray(random, d * h, 0.8 / Math.sqrt(d)));
    const w2 = Float32Array.from(randomArray(random, h * d, 0.8 / Math.sqrt(h)));
    const b1 = Float32Array.from(randomArray(random, h, 0.1));
    const b2 = Float32Array.from(randomArray(random, d, 0.1));
    const f = sequential(add(), relu(), linear(engine, { weight: w1, bias: b1 }), tanh(), linear(engine, { weight: w2, bias: b2 }), add(), tanh());
    expect(f.groups).toBe(4);
    const l1: RefLinear = { inFeatures: d, outFeatures: h, W: Float64Array.from(w1), b: Float64Array.from(b1) };
    const l2: RefLinear = { inFeatures: h, outFeatures: d, W: Float64Array.from(w2), b: Float64Array.from(b2) };
    const stages = [refAddQdStage, refActivationStage('relu'), refLinearStage(l1), refActivationStage('tanh'), refLinearStage(l2), refAddQdStage, refActivationStage('tanh')];
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    // The advance with add(Qd) and relu applied, the linear after them, the product measuring, decide.
    expect(await perIteration(broyden, f, q, {})).toBe(4);
    expect(await perIteration(broyden, f, q, { fused: false })).toBe(7);
    await expectBroydenAgrees(f, q, qd, (qdv) => (u) => refSequentialForward(stages, u, qdv));
    // On a GPU's plan too (more advance workgroups, the rank-one sums as trees).
    engine.planAs = 'gpu';
    try {
      expect(await perIteration(broyden, f, q, {})).toBe(4);
      await expectBroydenAgrees(f, q, qd, (qdv) => (u) => refSequentialForward(stages, u, qdv));
    } finally {
      engine.planAs = undefined;
    }
    f.dispose();
    q.dispose();
  });

  it('a layerNorm head of more than 8 workgroups on a CPU adapter: the advance kernel (k + 2), as the reference', async () => {
    const [d, h, batch] = [16, 12, 9];
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const { f, map } = normChain(d, h);
    expect(await perIteration(broyden, f, q, {})).toBe(5);
    await expectBroydenAgrees(f, q, qd, map);
    f.dispose();
    q.dispose();
  });

  it('a conv2d first keeps the advance kernel: Broyden k + 2, as the generic path and the float64 reference', async () => {
    const [height, width, C, batch] = [2, 3, 2, 2];
    const d = height * width * C;
    const conv: RefConv2d = { height, width, inChannels: C, outChannels: C, weight: Float64Array.from(randomArray(random, 9 * C * C, 0.3)), bias: Float64Array.from(randomArray(random, C, 0.1)) };
    const w = Float32Array.from(randomArray(random, d * d, 0.8 / Math.sqrt(d)));
    const b = Float32Array.from(randomArray(random, d, 0.1));
    const f = sequential(
      conv2d(engine, { height, width, inChannels: C, outChannels: C, weight: Float32Array.from(conv.weight), bias: Float32Array.from(conv.bias) }),
      relu(),
      linear(engine, { weight: w, bias: b }),
      add(),
      tanh(),
    );
    expect(f.groups).toBe(2);
    const lin: RefLinear = { inFeatures: d, outFeatures: d, W: Float64Array.from(w), b: Float64Array.from(b) };
    const convStage: RefStage = { forward: (x) => refConv2dForward(conv, x), vjp: () => { throw new Error('not needed'); } };
    const stages = [convStage, refActivationStage('relu'), refLinearStage(lin), refAddQdStage, refActivationStage('tanh')];
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    expect(await perIteration(broyden, f, q, {})).toBe(4);
    expect(await perIteration(broyden, f, q, { fused: false })).toBe(5);
    await expectBroydenAgrees(f, q, qd, (qdv) => (u) => refSequentialForward(stages, u, qdv));
    f.dispose();
    q.dispose();
  });

  it('a chain with dropout keeps the generic kernels (the same counts with fused: false)', async () => {
    const d = 16;
    const batch = 2;
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * d, 1)), [batch, d]);
    const noisy = chain(d, 12, true).f;
    expect(await perIteration(picard, noisy, q, {})).toBe(await perIteration(picard, noisy, q, { fused: false }));
    expect(await perIteration(broyden, noisy, q, {})).toBe(await perIteration(broyden, noisy, q, { fused: false }));
    noisy.dispose();
    q.dispose();
  });
});
