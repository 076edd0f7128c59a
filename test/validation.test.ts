// Issue 11, points 3–5, across the public API: (3) every options object is read by the one
// validator, so a misspelt name is an OptionError naming it (never ignored); (4) null, plain
// objects and wrong kinds where a tensor, device, engine, layer or solver is expected are typed
// errors naming the argument, never a plain TypeError; (5) counts that reach the GPU have
// documented upper bounds checked up front, and Anderson's schedule table is sized by the window.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Engine,
  LimitError,
  OptionError,
  ShapeError,
  add,
  anderson,
  broyden,
  conv2d,
  defineLayer,
  dropout,
  gdeq,
  gradcheck,
  groupNorm,
  ift,
  jfb,
  layerNorm,
  linear,
  mse,
  phantom,
  picard,
  Qd as QD,
  sequential,
  softmaxCrossEntropy,
  tanh,
  type Solver,
  type SolverOptions,
  type TanhBlock,
  type Tensor,
  adam,
  gradientAccumulator,
  implicitBlock,
  sgd,
} from '../src';
import { ringEntry, ringSchedule, type RingEntry } from '../src/solvers/anderson';
import { createTestEngine } from './helpers/engine';
import { expectTyped, rejection, thrown } from './helpers/errors';

const D = 4;
const BATCH = 2;
/** A rejection slower than this is not "up front". */
const QUICK_MS = 5_000;

let engine: Engine;
let f: TanhBlock;
const w = Float32Array.from({ length: D * D }, (_, i) => ((i * 7) % 5) * 0.05 - 0.1);
const b = Float32Array.from({ length: D }, (_, i) => 0.1 * i);

beforeAll(async () => {
  engine = await createTestEngine();
  f = implicitBlock(engine, { weight: w, bias: b });
});

afterAll(() => engine?.destroy());

function qd(): Tensor {
  return engine.tensor(new Float32Array(BATCH * D).fill(0.25), [BATCH, D]);
}

/** Casts a deliberately wrong argument past the type checker. */
function bad<T>(value: unknown): T {
  return value as T;
}

describe('point 3: misspelt options are refused by name, everywhere', () => {
  it('implicitBlock params and its dropout options', () => {
    const err = thrown(() => implicitBlock(engine, bad({ weight: w, bias: b, dropOut: 0.5 })));
    expectTyped(err, OptionError, 'params.dropOut');
    expect((err as Error).message).toContain("did you mean 'dropout'?");
    expectTyped(thrown(() => implicitBlock(engine, bad({ weight: w, bias: b, forwardkernel: 'tiled' }))), OptionError, 'params.forwardkernel');
    expectTyped(thrown(() => implicitBlock(engine, bad({ weight: w, bias: b, dropout: { rate: 0.5, nosie: 'per-solve' } }))), OptionError, 'dropout.nosie');
    expectTyped(thrown(() => implicitBlock(engine, bad({ weight: w, bias: b, dropout: {} }))), OptionError, 'dropout.rate');
    expectTyped(thrown(() => dropout(bad({ rate: 0.1, Noise: 'per-solve' }))), OptionError, 'dropout.Noise');
  });

  it('linear, layerNorm, groupNorm, conv2d, sequential and defineLayer', async () => {
    expectTyped(thrown(() => linear(engine, bad({ weight: w, bias: b, Bias: b }))), OptionError, 'params.Bias');
    const gamma = [1, 1, 1, 1];
    const beta = [0, 0, 0, 0];
    expectTyped(thrown(() => layerNorm(engine, bad({ gamma, beta, epsilon: 1e-5 }))), OptionError, 'options.epsilon');
    expectTyped(thrown(() => groupNorm(engine, bad({ groups: 2, gamma, beta, group: 2 }))), OptionError, 'options.group');
    const conv = { height: 2, width: 2, weight: new Float32Array(9), bias: [0] };
    expectTyped(thrown(() => conv2d(engine, bad({ ...conv, inchannels: 1 }))), OptionError, 'options.inchannels');
    expectTyped(thrown(() => sequential(bad({ engine, featuresize: D }), add(QD), tanh())), OptionError, 'options.featuresize');
    const definition = { featureSize: D, forward: 'fn forward(row: u32, i: u32) -> f32 { return 0.0; }', adjoint: '' };
    expectTyped(await rejection(defineLayer(engine, bad({ ...definition, parms: {} }))), OptionError, 'definition.parms');
  });

  it('Engine.create, adam, sgd, gradcheck and Linear.backward', async () => {
    expectTyped(await rejection(Engine.create(bad({ powerpreference: 'low-power' }))), OptionError, 'options.powerpreference');
    expectTyped(await rejection(Engine.create(bad({ powerPreference: 'fast' }))), OptionError, 'options.powerPreference');
    const p = engine.zeros([D]);
    expectTyped(thrown(() => adam(engine, [p], bad({ learningRate: 0.1 }))), OptionError, 'options.learningRate');
    expectTyped(thrown(() => sgd(engine, [p], bad({ momentun: 0.9 }))), OptionError, 'options.momentun');
    expectTyped(thrown(() => sgd(engine, [p], bad(7))), OptionError, 'options');
    expectTyped(await rejection(gradcheck(f, bad({ batches: 2 }))), OptionError, 'options.batches');
    const layer = linear(engine, { weight: w, bias: b });
    const x = engine.zeros([1, D]);
    expectTyped(await rejection(layer.backward(x, x, bad({ inputgrad: true }))), OptionError, 'options.inputgrad');
    expectTyped(await rejection(layer.backward(x, x, bad({ inputGrad: 1 }))), OptionError, 'options.inputGrad');
    p.dispose();
    x.dispose();
  });

  it.each([
    ['jfb', jfb],
    ['gdeq', gdeq],
    ['ift', ift],
    ['phantom', phantom],
  ] as const)('%s: a non-object options argument and unknown option names', async (_name, wrapper) => {
    for (const options of [5, 'eps', [], null, true]) {
      expectTyped(await rejection(wrapper(f, qd(), bad(options))), OptionError, 'options');
    }
    expectTyped(await rejection(wrapper(f, qd(), bad({ solvr: picard }))), OptionError, 'options.solvr');
    expectTyped(await rejection(wrapper(f, qd(), bad({ epsilon: 1e-4 }))), OptionError, 'options.epsilon');
  });

  it("ift's own options are checked before the forward solve; jfb does not take them", async () => {
    expectTyped(await rejection(ift(f, qd(), bad({ backwardEPS: 1e-6 }))), OptionError, 'options.backwardEPS');
    expectTyped(await rejection(ift(f, qd(), { backwardEps: Number.NaN })), OptionError, 'options.backwardEps');
    expectTyped(await rejection(ift(f, qd(), { backwardMaxDepth: 0 })), OptionError, 'options.backwardMaxDepth');
    expectTyped(await rejection(ift(f, qd(), { backwardMaxDepth: 2 ** 32 + 3 })), OptionError, 'options.backwardMaxDepth');
    expectTyped(await rejection(ift(f, qd(), bad({ backwardSolver: 'broyden' }))), OptionError, 'options.backwardSolver');
    expectTyped(await rejection(jfb(f, qd(), bad({ backwardEps: 1e-6 }))), OptionError, 'options.backwardEps');
  });
});

describe('point 4: wrong kinds are typed errors naming the argument', () => {
  it('Engine.fromDevice with something that is not a GPUDevice', () => {
    for (const device of [{}, null, undefined, 42, { queue: {} }, engine]) {
      expectTyped(thrown(() => Engine.fromDevice(bad(device))), OptionError, 'device');
    }
    // The real device is accepted (and not destroyed by the engine that borrows it).
    const borrowed = Engine.fromDevice(engine.device);
    borrowed.destroy();
  });

  it('engine.tensor data that is not a Float32Array, a Float64Array or a number[]', async () => {
    for (const data of [null, undefined, '1234', { length: 4 }, Int32Array.from([1, 2, 3, 4]), ['1', '2', '3', '4'], [1, 2, null, 4]]) {
      expectTyped(thrown(() => engine.tensor(bad(data), [4])), ShapeError, 'data');
    }
    const ok = engine.tensor(Float64Array.from([1, 2, 3, 4]), [4]);
    expect(Array.from(await ok.read())).toEqual([1, 2, 3, 4]);
    ok.dispose();
  });

  it('losses with null, plain objects or non-tensors', async () => {
    const t = qd();
    expectTyped(await rejection(mse(bad(null))), ShapeError, 'prediction');
    expectTyped(await rejection(mse(bad({ shape: [BATCH, D] }))), ShapeError, 'prediction');
    expectTyped(await rejection(mse(t, bad(w))), ShapeError, 'target');
    expectTyped(await rejection(mse(t, bad(null))), ShapeError, 'target');
    expectTyped(await rejection(softmaxCrossEntropy(bad(null), [0, 1])), ShapeError, 'logits');
    expectTyped(await rejection(softmaxCrossEntropy(t, bad(null))), ShapeError, 'labels');
    expectTyped(await rejection(softmaxCrossEntropy(t, bad(t))), ShapeError, 'labels');
    expectTyped(await rejection(softmaxCrossEntropy(t, bad('01'))), ShapeError, 'labels');
  });

  it('layer and stage factories with something that is not an engine', async () => {
    expectTyped(thrown(() => linear(bad(null), { weight: w, bias: b })), OptionError, 'engine');
    expectTyped(thrown(() => layerNorm(bad({}), { gamma: [1], beta: [0] })), OptionError, 'engine');
    expectTyped(thrown(() => groupNorm(bad(undefined), { groups: 1, gamma: [1], beta: [0] })), OptionError, 'engine');
    expectTyped(thrown(() => conv2d(bad(null), { height: 1, width: 1, weight: new Float32Array(9), bias: [0] })), OptionError, 'engine');
    expectTyped(await rejection(defineLayer(bad(null), bad({}))), OptionError, 'engine');
    expectTyped(thrown(() => sequential(bad({ engine: {}, featureSize: D }), add(QD), tanh())), OptionError, 'options.engine');
    expectTyped(thrown(() => linear(engine, { weight: bad('abcd'), bias: b })), ShapeError, 'weight');
    expectTyped(thrown(() => layerNorm(engine, { gamma: bad(['1']), beta: [0] })), ShapeError, 'gamma');
    expectTyped(thrown(() => implicitBlock(engine, { weight: w, bias: bad([0, 0, '0', 0]) })), ShapeError, 'bias');
  });

  it('Linear.forward/backward, gradcheck and GradientAccumulator with wrong kinds', async () => {
    const layer = linear(engine, { weight: w, bias: b });
    expectTyped(await rejection(layer.forward(bad(null))), ShapeError, 'x');
    expectTyped(await rejection(layer.forward(bad({ shape: [1, D] }))), ShapeError, 'x');
    const x = engine.zeros([1, D]);
    expectTyped(await rejection(layer.backward(x, bad(null))), ShapeError, 'dy');
    expectTyped(await rejection(gradcheck(bad(null))), OptionError, 'f');
    expectTyped(await rejection(gradcheck(bad({ featureSize: D }))), OptionError, 'f');
    await layer.prepare();
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    expectTyped(thrown(() => layer.encodeForward(pass, bad(null), x, 1)), ShapeError, 'x');
    expectTyped(thrown(() => layer.encodeForward(pass, x, bad({ size: 16 }), 1)), ShapeError, 'y');
    expectTyped(thrown(() => layer.encodeBackward(pass, x, x, bad({ weight: [0] }), 1)), ShapeError, 'grads.weight');
    expectTyped(thrown(() => layer.encodeForward(bad(null), x, x, 1)), OptionError, 'pass');
    const opt = sgd(engine, [x]);
    await opt.prepare();
    expectTyped(thrown(() => opt.encodeStep(bad(null), [engine.zeros([1, D])])), OptionError, 'pass');
    const acc = gradientAccumulator(engine, [x]);
    await acc.prepare();
    expectTyped(thrown(() => acc.encodeAdd(bad(null), [engine.zeros([1, D])])), OptionError, 'pass');
    expectTyped(thrown(() => acc.encodeZero(bad(pass))), OptionError, 'encoder');
    pass.end();
    opt.dispose();
    acc.dispose();
    expectTyped(await rejection(f.prepare(0)), ShapeError, 'batch');
    expectTyped(await rejection(f.prepare(2.5)), ShapeError, 'batch');
    expectTyped(await rejection(gradcheck(f, { batch: 2 ** 40 })), LimitError, 'options.batch');
    expectTyped(thrown(() => gradientAccumulator(engine, bad(null))), ShapeError, 'params');
    expectTyped(thrown(() => gradientAccumulator(engine, bad([{}]))), ShapeError, 'params[0]');
    x.dispose();
  });

  it.each([
    ['jfb', jfb],
    ['gdeq', gdeq],
    ['ift', ift],
    ['phantom', phantom],
  ] as const)('%s: f and Qd of the wrong kind', async (_name, wrapper) => {
    expectTyped(await rejection(wrapper(bad(null), qd())), OptionError, 'f');
    expectTyped(await rejection(wrapper(bad({}), qd())), OptionError, 'f');
    expectTyped(await rejection(wrapper(f, bad(null))), ShapeError, 'Qd');
    expectTyped(await rejection(wrapper(f, bad([0, 0, 0, 0]))), ShapeError, 'Qd');
  });

  it.each([
    ['jfb', jfb],
    ['gdeq', gdeq],
    ['ift', ift],
    ['phantom', phantom],
  ] as const)('%s: a solver that is not a solver is refused; a wrapper around one is accepted', async (_name, wrapper) => {
    const notSolvers: unknown[] = [
      'broyden',
      {},
      null,
      42,
      (x: number) => x, // returns its first argument (the layer), not a solve result
      () => Promise.resolve({ uStar: 1, uPrev: 2 }),
      (layer: { nope: { x: number } }) => layer.nope.x, // throws a TypeError
    ];
    for (const solver of notSolvers) {
      expectTyped(await rejection(wrapper(f, qd(), bad({ solver }))), OptionError, 'options.solver');
    }
    const wrapped: Solver = (layer, Qd, options) => picard(layer, Qd, { ...options, maxDepth: 60 });
    const out = await wrapper(f, qd(), { solver: wrapped });
    expect(out.stats.converged).toBe(true);
    out.dispose();
  });

  it('ift: a backwardSolver that is not a solver is refused when backward runs', async () => {
    const out = await ift(f, qd(), { solver: picard, backwardSolver: bad((x: number) => x) });
    expectTyped(await rejection(out.backward(qd())), OptionError, 'options.backwardSolver');
    out.dispose();
  });

  it('engine.scope with a non-function, engine.keep with a non-tensor, prepare with a non-integer batch', async () => {
    for (const value of [null, undefined, 0, 'fn', {}, [], Symbol('s')]) {
      expectTyped(await rejection(engine.scope(value as never)), OptionError, 'fn');
      expectTyped(thrown(() => engine.keep(value as never)), ShapeError, 'tensor');
    }
    const layers = [
      f,
      sequential(linear(engine, { weight: new Float32Array(D * D), bias: new Float32Array(D) }), tanh()),
      await defineLayer(engine, {
        featureSize: D,
        forward: 'fn forward(row: u32, i: u32) -> f32 { return injected(row, i); }',
        adjoint: 'fn grad_input(row: u32, i: u32) -> f32 { return 0.0; }\nfn grad_qd(row: u32, i: u32) -> f32 { return grad_output(row, i); }',
      }),
    ];
    for (const layer of layers) {
      for (const batch of [Symbol('b'), 0, -1, 1.5, '2', null]) {
        expectTyped(await rejection(layer.prepare(batch as never)), ShapeError, 'batch');
      }
    }
  });
});

describe('point 5: bounds on counts that reach the GPU', () => {
  const SOLVERS: [string, Solver][] = [
    ['picard', picard],
    ['anderson', anderson],
    ['broyden', broyden],
  ];

  it.each(SOLVERS)('%s refuses maxDepth 2**32 + 3 and 2**20 + 1, checkEvery 2**20 + 1, and f32-overflowing eps/reg, up front', async (_name, solve) => {
    const Qd = qd();
    const before = engine.memory.allocatedBytes;
    for (const [options, argument] of [
      [{ maxDepth: 2 ** 32 + 3 }, 'options.maxDepth'],
      [{ maxDepth: 2 ** 20 + 1 }, 'options.maxDepth'],
      [{ checkEvery: 2 ** 20 + 1 }, 'options.checkEvery'],
      [{ eps: 1e39 }, 'options.eps'],
      [{ reg: 1e39 }, 'options.reg'],
      [{ key: 2 ** 32 }, 'options.key'],
      [{ lbfgsThres: 65_535 }, 'options.lbfgsThres'],
    ] as [SolverOptions, string][]) {
      expectTyped(await rejection(solve(f, Qd, options), QUICK_MS), OptionError, argument);
    }
    expect(engine.memory.allocatedBytes).toBe(before);
    // The bound itself is accepted (and the solve stops at eps, long before it).
    const result = await solve(f, Qd, { maxDepth: 2 ** 20, checkEvery: 16 });
    expect(result.stats.converged).toBe(true);
    result.dispose();
    Qd.dispose();
  });

  it('broyden: lbfgsThres null with a maxDepth above the memory bound is refused; picard ignores it', async () => {
    const Qd = qd();
    expectTyped(await rejection(broyden(f, Qd, { lbfgsThres: null, maxDepth: 100_000 })), OptionError, 'options.lbfgsThres');
    const result = await picard(f, Qd, { lbfgsThres: null, maxDepth: 100_000 });
    expect(result.stats.converged).toBe(true);
    result.dispose();
    Qd.dispose();
  });

  it('gdeq refuses a Broyden memory above its 1024 columns before solving', async () => {
    const Qd = qd();
    const before = engine.memory.allocatedBytes;
    expectTyped(await rejection(gdeq(f, Qd, { lbfgsThres: 1025 }), QUICK_MS), LimitError, 'options.lbfgsThres');
    expectTyped(await rejection(gdeq(f, Qd, { lbfgsThres: null, maxDepth: 2000 }), QUICK_MS), LimitError, 'options.lbfgsThres');
    expect(engine.memory.allocatedBytes).toBe(before);
    Qd.dispose();
  });

  it('anderson with maxDepth 5e7 is refused at once, without building a table', async () => {
    const Qd = qd();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = Date.now();
    expectTyped(await rejection(anderson(f, Qd, { maxDepth: 5e7 }), QUICK_MS), OptionError, 'options.maxDepth');
    expect(Date.now() - started).toBeLessThan(QUICK_MS);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 2 ** 20);
    Qd.dispose();
  });

  it('anderson at maxDepth 2**20 with trace uploads a schedule sized by the window, and runs', async () => {
    const Qd = qd();
    const before = engine.memory.peakBytes;
    const result = await anderson(f, Qd, { maxDepth: 2 ** 20, windowSize: 5, restarting: true, trace: true });
    expect(result.stats.converged).toBe(true);
    expect(result.stats.trace?.abs.length).toBeGreaterThan(1);
    // Control block with a 2**20-entry trace (8 MiB) plus small buffers; no 16-byte-per-iteration table.
    expect(engine.memory.peakBytes - before).toBeLessThan(8 * 2 ** 20 + 2 ** 20);
    result.dispose();
    Qd.dispose();
  });

  it('anderson runs past the periodic part of its schedule: eps 0 runs exactly maxDepth steps', async () => {
    const Qd = qd();
    for (const restarting of [false, true]) {
      const result = await anderson(f, Qd, { eps: 0, maxDepth: 40, windowSize: 3, restarting });
      expect(result.stats.nstep).toBe(40);
      expect(result.stats.nonFinite).toBe(false);
      // The contraction's fixed point is reached to float32 precision.
      expect(result.stats.absResidual).toBeLessThan(1e-5);
      result.dispose();
    }
    Qd.dispose();
  });

  it('adam/sgd learning rates and the accumulator scale must be finite float32', () => {
    const p = engine.zeros([D]);
    expectTyped(thrown(() => adam(engine, [p], { lr: 1e39 })), OptionError, 'options.lr');
    expectTyped(thrown(() => sgd(engine, [p], { weightDecay: 1e39 })), OptionError, 'options.weightDecay');
    const opt = sgd(engine, [p]);
    expectTyped(thrown(() => opt.setLearningRate(1e39)), OptionError, 'lr');
    opt.dispose();
    p.dispose();
  });
});

/**
 * The ring schedule in closed form (the reference): without restarts slot t mod slots is written
 * and the window grows to `slots`; with restarts the schedule repeats every slots − 1 iterations
 * from t = 1, restarting when the window is full.
 */
function referenceEntry(slots: number, restarting: boolean, t: number): RingEntry {
  if (t === 0) return { p: 0, len: 1, restart: false, q: 1 };
  if (!restarting) return { p: t % slots, len: Math.min(t + 1, slots), restart: false, q: (t + 1) % slots };
  const k = ((t - 1) % (slots - 1)) + 1;
  const restart = k + 1 === slots;
  return { p: k, len: k + 1, restart, q: restart ? 1 : (k + 1) % slots };
}

describe("Anderson's folded schedule", () => {
  it('gives every iteration the entry of the closed-form schedule, from a table of at most slots² + 1 entries', () => {
    const maxDepth = 400;
    for (let slots = 2; slots <= 33; slots++) {
      for (const restarting of [false, true]) {
        const folded = ringSchedule(slots, restarting, maxDepth);
        expect(folded.entries.length).toBeLessThanOrEqual(Math.min(maxDepth, slots * slots + 1));
        for (let t = 0; t < maxDepth; t++) expect(ringEntry(folded, t)).toEqual(referenceEntry(slots, restarting, t));
      }
    }
    // A huge maxDepth costs no more than a small one.
    expect(ringSchedule(33, false, 2 ** 20).entries.length).toBeLessThanOrEqual(33 * 33 + 1);
  });
});
