// Composed layers: the elementwise, add(Qd), dropout and linear stages against the float64
// references (src/reference/stages.ts, linear.ts, block.ts), sequential's glue (∂Qd summed, zero
// when no stage reads Qd, gradInputAdd, parameter names), and composed layers through all three
// solvers and jfb/gdeq/ift against the reference solvers and backprop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  add,
  anderson,
  conv2d,
  gradcheck,
  groupNorm,
  broyden,
  dropout,
  gdeq,
  gelu,
  ift,
  jfb,
  linear,
  OptionError,
  picard,
  Qd,
  relu,
  sequential,
  ShapeError,
  tanh,
  type Engine,
  type Stage,
} from '../src';
import {
  refActivation,
  refActivationStage,
  refActivationVjp,
  refAddQdStage,
  refAnderson,
  refBlockForward,
  refBlockMap,
  refBlockVjp,
  refBroyden,
  refDropoutStageFactors,
  refGdeq,
  refIft,
  refJfb,
  refPicard,
  refSequentialForward,
  refSequentialVjp,
  type RefActivation,
  type RefBlock,
  type RefLinear,
} from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, relError, rng, f32 } from './helpers/engine';
import { gateBuffer, layerAdjoint, layerForward, refLinearStage } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const ACTIVATIONS: Record<RefActivation, () => Stage> = { tanh, relu, gelu };

function randomLinear(seed: number, inF: number, outF: number, scale = 1): RefLinear {
  const random = rng(seed);
  return { inFeatures: inF, outFeatures: outF, W: f32(randomArray(random, inF * outF, scale / Math.sqrt(inF))), b: f32(randomArray(random, outF, 0.3)) };
}

describe('activation stages', () => {
  const d = 13;
  it.each([
    ['tanh', 1],
    ['relu', 1],
    ['relu', 3],
    ['gelu', 1],
    ['gelu', 3],
    ['tanh', 3],
  ] as const)('%s, batch %i: forward and adjoint = the float64 reference; ∂Qd = 0', async (op, batch) => {
    const random = rng(batch * 10 + op.length);
    const u = f32(randomArray(random, batch * d, 2));
    const qd = f32(randomArray(random, batch * d, 1));
    const g = f32(randomArray(random, batch * d, 1));
    const layer = sequential({ engine, featureSize: d }, ACTIVATIONS[op]());
    expect(maxAbsDiff(await layerForward(layer, u, qd, batch), refActivation(op, u))).toBeLessThan(2e-6);
    const grads = await layerAdjoint(layer, u, qd, g, batch);
    expect(maxAbsDiff(grads.du, refActivationVjp(op, u, g))).toBeLessThan(2e-6);
    expect(Array.from(grads.dQd).every((v) => v === 0)).toBe(true);
  });
});

describe('sequential(linear, add(Qd), tanh()) is the tanh block', () => {
  const d = 13;
  const batch = 3;
  const random = rng(7);
  const block: RefBlock = { d, w: f32(randomArray(random, d * d, 0.4)), b: f32(randomArray(random, d, 0.5)) };
  const u = f32(randomArray(random, batch * d, 1));
  const qd = f32(randomArray(random, batch * d, 1));
  const g = f32(randomArray(random, batch * d, 1));
  const extra = f32(randomArray(random, batch * d, 1));
  const make = () => sequential(linear(engine, { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) }), add(Qd), tanh());

  it('names its parameters by stage index', () => {
    const f = make();
    expect(Object.keys(f.params)).toEqual(['0.weight', '0.bias']);
    expect(f.featureSize).toBe(d);
  });

  it.each([1, batch])('batch %i: forward, ∂u, ∂Qd, ∂W, ∂b and gradInputAdd equal refBlockForward / refBlockVjp', async (rows) => {
    const f = make();
    const n = rows * d;
    const [uu, qq, gg, ee] = [u.slice(0, n), qd.slice(0, n), g.slice(0, n), extra.slice(0, n)];
    expect(maxAbsDiff(await layerForward(f, uu, qq, rows), refBlockForward(block, uu, qq))).toBeLessThan(1e-5);
    const expected = refBlockVjp(block, uu, qq, gg);
    const grads = await layerAdjoint(f, uu, qq, gg, rows, { add: ee });
    expect(maxAbsDiff(grads.du, expected.u.map((v, i) => v + ee[i]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(grads.dQd, expected.Qd)).toBeLessThan(1e-5);
    expect(maxAbsDiff(grads.dParams['0.weight'], expected.w)).toBeLessThan(1e-5);
    expect(maxAbsDiff(grads.dParams['0.bias'], expected.b)).toBeLessThan(1e-5);
  });

  it('a closed gate leaves the output untouched', async () => {
    const f = make();
    const out = await layerForward(f, u, qd, batch, gateBuffer(engine, [1, 0, 0, 0]));
    expect(Array.from(out).every((v) => v === 7)).toBe(true);
  });
});

describe('a four-stage layer with a hidden width: linear(d→h), gelu, linear(h→d), add(Qd)', () => {
  const d = 9;
  const h = 14;
  const batch = 2;
  const first = randomLinear(11, d, h, 0.8);
  const second = randomLinear(12, h, d, 0.8);
  const refStages = [refLinearStage(first), refActivationStage('gelu'), refLinearStage(second), refAddQdStage];
  const make = () =>
    sequential(
      linear(engine, { weight: Float32Array.from(first.W), bias: Float32Array.from(first.b) }),
      gelu(),
      linear(engine, { weight: Float32Array.from(second.W), bias: Float32Array.from(second.b) }),
      add(Qd),
    );
  const random = rng(13);
  const u = f32(randomArray(random, batch * d, 1));
  const qd = f32(randomArray(random, batch * d, 1));
  const g = f32(randomArray(random, batch * d, 1));

  it('forward and every gradient equal the reference composition', async () => {
    const f = make();
    expect(maxAbsDiff(await layerForward(f, u, qd, batch), refSequentialForward(refStages, u, qd))).toBeLessThan(1e-5);
    const expected = refSequentialVjp(refStages, u, qd, g);
    const grads = await layerAdjoint(f, u, qd, g, batch);
    expect(maxAbsDiff(grads.du, expected.du)).toBeLessThan(1e-5);
    expect(maxAbsDiff(grads.dQd, expected.dQd)).toBeLessThan(1e-6);
    expect(Object.keys(grads.dParams).sort()).toEqual(['0.bias', '0.weight', '2.bias', '2.weight']);
    for (const name of Object.keys(grads.dParams)) expect(maxAbsDiff(grads.dParams[name], expected.dParams[name])).toBeLessThan(1e-5);
  });

  it('picard finds the reference fixed point; jfb gradients = the reference VJP at uPrev', async () => {
    const f = make();
    const Qdt = engine.tensor(Float32Array.from(qd), [batch, d]);
    const map = (x: Float64Array) => refSequentialForward(refStages, x, qd);
    const reference = refPicard(map, new Float64Array(batch * d), { eps: 0, maxDepth: 20, stopMode: 'abs' });
    const solved = await picard(f, Qdt, { eps: 0, maxDepth: 20, stopMode: 'abs' });
    expect(solved.tnstep).toBe(reference.tnstep);
    expect(maxAbsDiff(await solved.uStar.read(), reference.uStar)).toBeLessThan(1e-4);
    solved.dispose();

    const result = await jfb(f, Qdt, { solver: picard, eps: 1e-4, maxDepth: 30 });
    const uPrev = Float64Array.from(await result.uPrev.read());
    const expected = refSequentialVjp(refStages, uPrev, qd, g);
    const grads = await result.backward(engine.tensor(Float32Array.from(g), [batch, d]));
    expect(maxAbsDiff(await grads.Qd.read(), expected.dQd)).toBeLessThan(1e-5);
    for (const name of ['0.weight', '0.bias', '2.weight', '2.bias']) expect(maxAbsDiff(await grads[name].read(), expected.dParams[name])).toBeLessThan(1e-5);
  });
});

describe('composed tanh block through every solver and jfb/gdeq/ift', () => {
  const d = 12;
  const batch = 2;
  const random = rng(21);
  const block: RefBlock = { d, w: f32(randomArray(random, d * d, 0.5 / Math.sqrt(d))), b: f32(randomArray(random, d, 0.5)) };
  const qd = f32(randomArray(random, batch * d, 1));
  const g = f32(randomArray(random, batch * d, 1));
  const make = () => sequential(linear(engine, { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) }), add(Qd), tanh());
  const map = refBlockMap(block, qd);
  const zeros = new Float64Array(batch * d);

  it.each([
    ['picard', picard, () => refPicard(map, zeros, { eps: 0, maxDepth: 12 })],
    ['anderson', anderson, () => refAnderson(map, zeros, { eps: 0, maxDepth: 8 })],
    ['broyden', broyden, () => refBroyden(map, zeros, { eps: 0, maxDepth: 8 })],
  ] as const)('%s: same steps and fixed point as the reference', async (_name, solver, reference) => {
    const f = make();
    const expected = reference();
    const maxDepth = _name === 'picard' ? 12 : 8;
    const solved = await solver(f, engine.tensor(Float32Array.from(qd), [batch, d]), { eps: 0, maxDepth });
    expect(solved.tnstep).toBe(expected.tnstep);
    expect(maxAbsDiff(await solved.uStar.read(), expected.uStar)).toBeLessThan(1e-4);
  });

  const gradsOf = async (grads: Record<string, { read(): Promise<Float32Array> }>) => ({
    w: await grads['0.weight'].read(),
    b: await grads['0.bias'].read(),
    Qd: await grads.Qd.read(),
  });

  it('jfb and gdeq (broyden, the solve’s own factors) equal refJfb / refGdeq at the GPU uPrev', async () => {
    const f = make();
    const Qdt = engine.tensor(Float32Array.from(qd), [batch, d]);
    const gT = engine.tensor(Float32Array.from(g), [batch, d]);
    const options = { eps: 1e-5, maxDepth: 30 };
    const viaJfb = await jfb(f, Qdt, { ...options, solver: broyden });
    const expectedJfb = refJfb(block, qd, Float64Array.from(await viaJfb.uPrev.read()), g);
    const jfbGrads = await gradsOf(await viaJfb.backward(gT));
    for (const key of ['w', 'b', 'Qd'] as const) expect(relError(jfbGrads[key], expectedJfb[key])).toBeLessThan(1e-5);

    const solved = await broyden(f, Qdt, { ...options, returnB: true });
    const B = solved.B;
    if (!B) throw new Error('returnB gave no factors');
    const factors = { Us: Float64Array.from(await B.Us.read()), VTs: Float64Array.from(await B.VTs.read()), validMask: B.validMask, L: B.validMask.length };
    const viaGdeq = await gdeq(f, Qdt, options);
    const expectedGdeq = refGdeq(block, qd, Float64Array.from(await viaGdeq.uPrev.read()), g, factors);
    const gdeqGrads = await gradsOf(await viaGdeq.backward(gT));
    for (const key of ['w', 'b', 'Qd'] as const) expect(relError(gdeqGrads[key], expectedGdeq[key])).toBeLessThan(1e-4);
    // GDEQ's preconditioning changes the answer here, so the comparison can tell them apart.
    expect(relError(gdeqGrads.w, expectedJfb.w)).toBeGreaterThan(1e-3);
  });

  it('ift equals refIft at the GPU uStar', async () => {
    const f = make();
    const Qdt = engine.tensor(Float32Array.from(qd), [batch, d]);
    const result = await ift(f, Qdt, { eps: 1e-6, maxDepth: 40, backwardEps: 1e-7 });
    const expected = refIft(block, qd, Float64Array.from(await result.uStar.read()), g);
    const grads = await gradsOf(await result.backward(engine.tensor(Float32Array.from(g), [batch, d])));
    for (const key of ['w', 'b', 'Qd'] as const) expect(relError(grads[key], expected[key])).toBeLessThan(1e-4);
  });
});

describe('dropout stage', () => {
  const d = 11;
  const batch = 3;
  const random = rng(31);
  const uAll = f32(randomArray(random, batch * d, 1));
  const qdAll = f32(randomArray(random, batch * d, 1));
  const gAll = f32(randomArray(random, batch * d, 1));

  it.each([1, batch])('batch %i, training mode: the mask of (key xor stage index, evaluation index); the adjoint applies it; inference: identity', async (rows) => {
    const f = sequential({ engine, featureSize: d }, tanh(), dropout({ rate: 0.4 }));
    const n = rows * d;
    const [u, qd, g] = [uAll.slice(0, n), qdAll.slice(0, n), gAll.slice(0, n)];
    const key = 1234;
    const evalIndex = 5;
    const factors = refDropoutStageFactors({ rate: 0.4, noise: 'per-iteration' }, key, 1, evalIndex, n);
    expect(factors.some((v) => v === 0) && factors.some((v) => v > 1)).toBe(true);
    const gate = gateBuffer(engine, [0, evalIndex, key, 1]);
    const y = refActivation('tanh', u);
    expect(maxAbsDiff(await layerForward(f, u, qd, rows, gate), y.map((v, i) => v * factors[i]))).toBeLessThan(1e-6);
    const grads = await layerAdjoint(f, u, qd, g, rows, { gate });
    expect(maxAbsDiff(grads.du, refActivationVjp('tanh', u, g.map((v, i) => v * factors[i])))).toBeLessThan(1e-6);
    expect(maxAbsDiff(await layerForward(f, u, qd, rows), y)).toBeLessThan(1e-6);
  });

  it('gradcheck in training mode: the adjoint applies the forward’s mask', async () => {
    const W = Float32Array.from(randomArray(rng(4), d * d, 0.4));
    const f = sequential(linear(engine, { weight: W, bias: new Float32Array(d) }), add(Qd), tanh(), dropout(0.3));
    const report = await gradcheck(f, { batch: 2, training: true, key: 77 });
    expect(report.passed, report.toString()).toBe(true);
  });

  it('rejects a missing or bad rate', () => {
    expect(() => dropout(undefined as unknown as number)).toThrow(OptionError);
    expect(() => dropout(1.5)).toThrow(/dropout.rate/);
  });
});

describe('conv2d and groupNorm composed (an MDEQ-style cell)', () => {
  it('passes gradcheck for every parameter', async () => {
    const C = 2;
    const random = rng(41);
    const f = sequential(
      conv2d(engine, { height: 3, width: 4, weight: Float32Array.from(randomArray(random, 9 * C * C, 0.4)), bias: Float32Array.from(randomArray(random, C, 0.2)), inChannels: C, outChannels: C }),
      groupNorm(engine, { groups: 1, gamma: Float32Array.from(randomArray(random, C, 1)), beta: Float32Array.from(randomArray(random, C, 0.3)) }),
      gelu(),
      add(Qd),
    );
    expect(Object.keys(f.params)).toEqual(['0.weight', '0.bias', '1.gamma', '1.beta']);
    const report = await gradcheck(f, { batch: 2 });
    expect(report.passed, report.toString()).toBe(true);
  });
});

describe('sequential errors', () => {
  it('names the stage at fault', () => {
    const lin = (inF: number, outF: number) => linear(engine, { weight: new Float32Array(inF * outF).fill(0.1), bias: new Float32Array(outF) });
    const thrown = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      throw new Error('did not throw');
    };
    const wrongInput = thrown(() => sequential(lin(4, 4), lin(5, 4)));
    expect(wrongInput).toBeInstanceOf(ShapeError);
    expect((wrongInput as ShapeError).argument).toBe('stages[1]');
    const wrongEnd = thrown(() => sequential(lin(4, 6), tanh()));
    expect((wrongEnd as ShapeError).argument).toBe('stages');
    const qdMismatch = thrown(() => sequential(lin(4, 6), add(Qd), lin(6, 4)));
    expect((qdMismatch as ShapeError).argument).toBe('stages[1]');
    expect((thrown(() => sequential(tanh(), add(Qd))) as OptionError).argument).toBe('stages');
    expect((thrown(() => sequential()) as OptionError).argument).toBe('stages');
    expect((thrown(() => sequential(lin(4, 4), {} as Stage)) as OptionError).argument).toBe('stages[1]');
    expect((thrown(() => sequential({ engine, featureSize: 0 }, tanh())) as ShapeError).argument).toBe('options.featureSize');
    expect((thrown(() => add('u' as typeof Qd)) as OptionError).argument).toBe('source');
  });
});
