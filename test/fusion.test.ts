// Stage fusion in `sequential` (src/layers/sequential.ts): a linear stage and the elementwise
// stages after it run as one dense product with an epilogue chain. A fused and an unfused
// (`fuse: false`) layer of the same stages agree to float32 rounding — forward, every gradient,
// through every solver and backprop method — and bit for bit for dropout's masks; the tanh block
// preset gives the fused sequential's bits on a golden case; kernels are counted on a real pass;
// layers that cannot fuse (fully) still match the float64 reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  add,
  anderson,
  broyden,
  conv2d,
  dropout,
  gdeq,
  gelu,
  gradcheck,
  groupNorm,
  ift,
  layerNorm,
  implicitBlock,
  jfb,
  linear,
  picard,
  Qd,
  relu,
  sequential,
  tanh,
  type Engine,
  type Sequential,
  type SolverOptions,
  type Stage,
  type Tensor,
} from '../src';
import {
  refActivationStage,
  refAddQdStage,
  refBlockForward,
  refBlockVjp,
  refConv2dForward,
  refConv2dVjp,
  refDropoutStageFactors,
  refGroupNormForward,
  refGroupNormVjp,
  refSequentialForward,
  refSequentialVjp,
  type RefConv2d,
  type RefGroupNorm,
  type RefLinear,
  type RefStage,
} from '../src/reference';
import { loadGolden } from './helpers/golden';
import { createTestEngine, maxAbsDiff, randomArray, rng, f32 } from './helpers/engine';
import { dispatchesPerIteration, gateBuffer, layerAdjoint, layerForward, refLinearStage, submit, type LayerGrads } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
/** The raw bits of float32 values (−0 ≠ +0, NaN-safe). */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/**
 * Agreement to float32 rounding: max |a − b| ≤ `ulps` units of 2⁻²⁴ of the values' scale.
 * A fused chain and its stages compute the same operations, so only the order of float32
 * roundings may differ (a wrong op or index is off by O(scale)).
 */
function expectRounding(a: ArrayLike<number>, b: ArrayLike<number>, ulps: number, what: string): void {
  const scale = Math.max(1, maxAbs(b));
  expect(maxAbsDiff(a, b), what).toBeLessThanOrEqual(ulps * 2 ** -24 * scale);
}

const d = 12;
const batch = 2;
const random = rng(2024);
const weight = Float32Array.from(randomArray(random, d * d, 0.5 / Math.sqrt(d)));
const bias = Float32Array.from(randomArray(random, d, 0.4));
const u = f32(randomArray(random, batch * d, 1));
const qd = f32(randomArray(random, batch * d, 1));
const g = f32(randomArray(random, batch * d, 1));
const extra = f32(randomArray(random, batch * d, 1));
const refLin: RefLinear = { inFeatures: d, outFeatures: d, W: Float64Array.from(weight), b: Float64Array.from(bias) };
const lin = () => linear(engine, { weight, bias });

/** A dropout stage of the tests (per solve, so the solvers converge in training mode). */
const DROPOUT = { rate: 0.25, noise: 'per-solve' as const };
const KEY = 99;

interface StageSet {
  name: string;
  stages: () => Stage[];
  /** Training mode (dropout draws masks); otherwise inference. */
  training: boolean;
}

const SETS: StageSet[] = [
  { name: 'linear → add(Qd) → tanh', stages: () => [lin(), add(Qd), tanh()], training: false },
  { name: 'linear → relu → add(Qd)', stages: () => [lin(), relu(), add(Qd)], training: false },
  { name: 'linear → add(Qd) → gelu → dropout, inference', stages: () => [lin(), add(Qd), gelu(), dropout(DROPOUT)], training: false },
  { name: 'linear → add(Qd) → gelu → dropout, training', stages: () => [lin(), add(Qd), gelu(), dropout(DROPOUT)], training: true },
];

/** The fused and the unfused layer of a set of stages. */
function pair(set: StageSet): { fused: Sequential; unfused: Sequential } {
  const fused = sequential(...set.stages());
  const unfused = sequential({ fuse: false }, ...set.stages());
  expect(fused.groups).toBe(1);
  expect(unfused.groups).toBe(unfused.stages.length);
  return { fused, unfused };
}

function expectGradsRounding(a: LayerGrads, b: LayerGrads, ulps: number, what: string): void {
  expectRounding(a.du, b.du, ulps, `${what}: ∂u`);
  expectRounding(a.dQd, b.dQd, ulps, `${what}: ∂Qd`);
  expect(Object.keys(a.dParams).sort()).toEqual(['0.bias', '0.weight']);
  for (const name of Object.keys(a.dParams)) expectRounding(a.dParams[name], b.dParams[name], ulps, `${what}: ${name}`);
}

describe('fused and unfused sequentials of the same stages agree to float32 rounding', () => {
  it.each(SETS.map((s) => [s.name, s] as const))('%s: forward, ∂u (+ gradInputAdd), ∂Qd, ∂weight, ∂bias of one evaluation', async (_name, set) => {
    const { fused, unfused } = pair(set);
    // Evaluation 3 of a solve with KEY, in training mode; the open gate otherwise.
    const gate = () => (set.training ? gateBuffer(engine, [0, 3, KEY, 1]) : engine.openGate());
    const yFused = await layerForward(fused, u, qd, batch, gate());
    const yUnfused = await layerForward(unfused, u, qd, batch, gate());
    expectRounding(yFused, yUnfused, 16, 'forward');
    const a = await layerAdjoint(fused, u, qd, g, batch, { gate: gate(), add: extra });
    const b = await layerAdjoint(unfused, u, qd, g, batch, { gate: gate(), add: extra });
    expectGradsRounding(a, b, 64, 'adjoint');
    // Not vacuous: ∂Qd and ∂weight are far from zero; in training mode some outputs are dropped.
    expect(maxAbs(a.dQd)).toBeGreaterThan(0.1);
    expect(maxAbs(a.dParams['0.weight'])).toBeGreaterThan(0.1);
    if (set.training) expect(Array.from(yFused).filter((v) => v === 0).length).toBeGreaterThan(0);
    fused.dispose();
    unfused.dispose();
  });

  const SOLVES = [['picard', picard], ['anderson', anderson], ['broyden', broyden]] as const;

  it.each(SETS.map((s) => [s.name, s] as const))('%s: picard, anderson, broyden fixed points; jfb (picard), gdeq (broyden), ift (anderson) gradients', async (_name, set) => {
    const { fused, unfused } = pair(set);
    const Qdt = engine.tensor(Float32Array.from(qd), [batch, d]);
    const gT = engine.tensor(Float32Array.from(g), [batch, d]);
    const mode: SolverOptions = set.training ? { key: KEY } : { inference: true };
    for (const [name, solver] of SOLVES) {
      const options: SolverOptions = { ...mode, eps: 0, maxDepth: 12 };
      const x = await solver(fused, Qdt, options);
      const y = await solver(unfused, Qdt, options);
      expect(x.tnstep, name).toBe(y.tnstep);
      // Twelve iterations of a contraction: the rounding differences stay at a few ulps each.
      expectRounding(await x.uStar.read(), await y.uStar.read(), 256, `${name}: uStar`);
    }
    const methods = [
      ['jfb', () => jfb, { solver: picard }],
      ['gdeq', () => gdeq, { solver: broyden }],
      ['ift', () => ift, { solver: anderson, backwardEps: 1e-7 }],
    ] as const;
    for (const [name, method, extraOptions] of methods) {
      const options = { ...mode, ...extraOptions, eps: 1e-6, maxDepth: 40 };
      const x = await method()(fused, Qdt, options);
      const y = await method()(unfused, Qdt, options);
      const gx = await x.backward(gT);
      const gy = await y.backward(gT);
      for (const key of ['Qd', '0.weight', '0.bias']) {
        const got = await gx[key].read();
        expect(maxAbs(got), `${name}: ${key}`).toBeGreaterThan(0.05);
        expectRounding(got, await gy[key].read(), 1024, `${name}: ${key}`);
      }
      x.dispose();
      y.dispose();
    }
    for (const owned of [fused, unfused, Qdt, gT]) owned.dispose();
  });

  it('gradcheck passes on the fused sequential, deterministic and in training mode with dropout', async () => {
    const plain = sequential(lin(), add(Qd), tanh());
    expect(plain.groups).toBe(1);
    const report = await gradcheck(plain, { batch: 2 });
    expect(report.passed, report.toString()).toBe(true);
    const noisy = sequential(lin(), add(Qd), gelu(), dropout(0.3));
    expect(noisy.groups).toBe(1);
    const noisyReport = await gradcheck(noisy, { batch: 2, training: true, key: 5 });
    expect(noisyReport.passed, noisyReport.toString()).toBe(true);
    plain.dispose();
    noisy.dispose();
  });
});

describe('dropout through the fused path matches the stage-by-stage path bit for bit', () => {
  it.each([
    ['linear → add(Qd) → tanh → dropout', () => [lin(), add(Qd), tanh(), dropout({ rate: 0.4 })]],
    ['linear → add(Qd) → gelu → dropout', () => [lin(), add(Qd), gelu(), dropout({ rate: 0.4 })]],
  ] as const)('%s: forward and adjoint of one training-mode evaluation', async (_name, stages) => {
    const fused = sequential(...stages());
    const unfused = sequential({ fuse: false }, ...stages());
    expect([fused.groups, unfused.groups]).toEqual([1, 4]);
    const evalIndex = 7;
    const gate = () => gateBuffer(engine, [0, evalIndex, KEY, 1]);
    const yFused = await layerForward(fused, u, qd, batch, gate());
    const yUnfused = await layerForward(unfused, u, qd, batch, gate());
    expect(bits(yFused)).toEqual(bits(yUnfused));
    // The mask is the reference's: the stage's index (3) salts the key.
    const factors = refDropoutStageFactors({ rate: 0.4, noise: 'per-iteration' }, KEY, 3, evalIndex, batch * d);
    expect(factors.some((v) => v === 0) && factors.some((v) => v > 1)).toBe(true);
    for (let i = 0; i < factors.length; i++) expect(yFused[i] === 0, `element ${i}`).toBe(factors[i] === 0);
    const a = await layerAdjoint(fused, u, qd, g, batch, { gate: gate(), add: extra });
    const b = await layerAdjoint(unfused, u, qd, g, batch, { gate: gate(), add: extra });
    expect(bits(a.du)).toEqual(bits(b.du));
    expect(bits(a.dQd)).toEqual(bits(b.dQd));
    for (const name of ['0.weight', '0.bias']) expect(bits(a.dParams[name]), name).toEqual(bits(b.dParams[name]));
    fused.dispose();
    unfused.dispose();
  });
});

describe('the tanh block preset is the fused sequential', () => {
  const golden = loadGolden();
  const c = golden.find((x) => x.name.startsWith('contractive'));
  if (!c) throw new Error('the golden fixtures have a contractive case');
  const SOLVERS = { picard, anderson, broyden };

  it.each(c.runs.map((r) => [r.name, r] as const))(`golden ${c.name}, run %s: implicitBlock and sequential(linear, add(Qd), tanh()) give bit-identical uStar`, async (_run, run) => {
    const w = Float32Array.from(c.weight);
    const b = Float32Array.from(c.bias);
    const block = implicitBlock(engine, { weight: w, bias: b });
    const composed = sequential(linear(engine, { weight: w, bias: b }), add(Qd), tanh());
    const shape = c.batch === 0 ? [c.d] : [c.batch, c.d];
    const Qdt = engine.tensor(Float32Array.from(c.Qd), shape);
    const x = await SOLVERS[run.solver](block, Qdt, run.options);
    const y = await SOLVERS[run.solver](composed, Qdt, run.options);
    expect(y.tnstep).toBe(x.tnstep);
    const uBlock = await x.uStar.read();
    expect(bits(await y.uStar.read())).toEqual(bits(uBlock));
    // Not vacuous: the result is the golden one (the tolerance of solvers.golden.test.ts).
    expect(maxAbsDiff(uBlock, run.uStar)).toBeLessThan(1e-4);
    for (const owned of [x, y, block, composed, Qdt]) owned.dispose();
  });
});

/** A real compute pass that counts dispatchWorkgroups calls and forwards every call. */
class CountingPass implements GPUComputePassEncoder {
  readonly __brand = 'GPUComputePassEncoder' as const;
  dispatches = 0;
  constructor(private readonly inner: GPUComputePassEncoder) {}
  get label(): string {
    return this.inner.label;
  }
  set label(value: string) {
    this.inner.label = value;
  }
  setPipeline(pipeline: GPUComputePipeline): undefined {
    return this.inner.setPipeline(pipeline);
  }
  dispatchWorkgroups(x: number, y?: number, z?: number): undefined {
    this.dispatches++;
    return this.inner.dispatchWorkgroups(x, y, z);
  }
  dispatchWorkgroupsIndirect(buffer: GPUBuffer, offset: number): undefined {
    this.dispatches++;
    return this.inner.dispatchWorkgroupsIndirect(buffer, offset);
  }
  end(): undefined {
    return this.inner.end();
  }
  pushDebugGroup(label: string): undefined {
    return this.inner.pushDebugGroup(label);
  }
  popDebugGroup(): undefined {
    return this.inner.popDebugGroup();
  }
  insertDebugMarker(label: string): undefined {
    return this.inner.insertDebugMarker(label);
  }
  setImmediates(rangeOffset: number, data: GPUAllowSharedBufferSource, dataOffset?: number, dataSize?: number): undefined {
    return this.inner.setImmediates(rangeOffset, data, dataOffset, dataSize);
  }
  setBindGroup(index: number, group: GPUBindGroup | null, offsets?: Iterable<number> | Uint32Array, start?: number, length?: number): undefined {
    if (offsets === undefined) return this.inner.setBindGroup(index, group);
    if (offsets instanceof Uint32Array) return this.inner.setBindGroup(index, group, offsets, start ?? 0, length ?? offsets.length);
    return this.inner.setBindGroup(index, group, offsets);
  }
}

describe('kernel count', () => {
  const uploaded: Tensor[] = [];
  const upload = (values: ArrayLike<number>): GPUBuffer => {
    const tensor = engine.tensor(Float32Array.from(values), [values.length]);
    uploaded.push(tensor);
    return tensor.buffer;
  };
  afterAll(() => {
    for (const tensor of uploaded) tensor.dispose();
  });

  /** Encodes into a counting pass, submits, and returns the dispatch count. */
  const counted = (encode: (pass: GPUComputePassEncoder) => void): number => {
    let count = -1;
    submit(engine, (pass) => {
      const counting = new CountingPass(pass);
      encode(counting);
      count = counting.dispatches;
    });
    return count;
  };

  it('sequential(linear, add(Qd), tanh()) evaluates f with one dispatch, unfused with three; its adjoint (∂u, ∂weight, ∂bias) with three', async () => {
    const block = { d, w: Float64Array.from(weight), b: Float64Array.from(bias) };
    const results: Float32Array[] = [];
    for (const fuse of [true, false]) {
      const f = sequential({ fuse }, lin(), add(Qd), tanh());
      await f.prepare(batch);
      const output = upload(new Float32Array(batch * d).fill(7));
      const count = counted((pass) => f.encodeForward(pass, { input: upload(u), output, Qd: upload(qd), gate: engine.openGate() }, batch));
      expect(count, `fuse: ${fuse}`).toBe(fuse ? 1 : 3);
      // The counted pass did the work: f(u) is the reference's.
      const y = await engine.readBuffer(output, batch * d * 4);
      expect(maxAbsDiff(y, refBlockForward(block, u, qd))).toBeLessThan(1e-5);
      results.push(y);
      if (!fuse) {
        f.dispose();
        continue;
      }
      const gradInput = upload(new Float32Array(batch * d).fill(7));
      const dw = upload(new Float32Array(d * d).fill(7));
      const db = upload(new Float32Array(d).fill(7));
      const adjoint = counted((pass) =>
        f.encodeAdjoint(pass, {
          input: upload(u),
          Qd: upload(qd),
          gradOutput: upload(g),
          gradInput,
          gradParams: { '0.weight': dw, '0.bias': db },
          gate: engine.openGate(),
        }, batch),
      );
      expect(adjoint).toBe(3);
      const expected = refBlockVjp(block, u, qd, g);
      expect(maxAbsDiff(await engine.readBuffer(gradInput, batch * d * 4), expected.u)).toBeLessThan(1e-5);
      expect(maxAbsDiff(await engine.readBuffer(dw, d * d * 4), expected.w)).toBeLessThan(1e-5);
      expect(maxAbsDiff(await engine.readBuffer(db, d * 4), expected.b)).toBeLessThan(1e-5);
      f.dispose();
    }
    expectRounding(results[0], results[1], 16, 'fused vs unfused forward');
  });
});

/** The float64 groupNorm as a stage of rows of `size` values. */
const refNormStage = (norm: RefGroupNorm, size: number): RefStage => ({
  forward: (x) => refGroupNormForward(norm, x, x.length / size),
  vjp: (x, _q, gg) => {
    const grads = refGroupNormVjp(norm, x, gg, x.length / size);
    return { dx: grads.dx, dParams: { gamma: grads.dGamma, beta: grads.dBeta } };
  },
});

describe('sequentials that cannot fuse (fully), and conv/norm chains, match the float64 reference', () => {
  const refDropout = (salt: number, rate: number): RefStage => {
    const factors = refDropoutStageFactors({ rate, noise: 'per-iteration' }, KEY, salt, 2, batch * d);
    return {
      forward: (x) => x.map((v, i) => v * factors[i]),
      vjp: (_x, _qd, gg) => ({ dx: gg.map((v, i) => v * factors[i]) }),
    };
  };

  it.each([
    ['two dropouts in a row', () => [lin(), tanh(), dropout(0.3), dropout(0.2)], [refLinearStage(refLin), refActivationStage('tanh'), refDropout(2, 0.3), refDropout(3, 0.2)], 2],
    ['a second add(Qd)', () => [lin(), add(Qd), tanh(), add(Qd)], [refLinearStage(refLin), refAddQdStage, refActivationStage('tanh'), refAddQdStage], 2],
    [
      'five elementwise ops after a linear',
      () => [lin(), add(Qd), tanh(), relu(), gelu(), tanh()],
      [refLinearStage(refLin), refAddQdStage, refActivationStage('tanh'), refActivationStage('relu'), refActivationStage('gelu'), refActivationStage('tanh')],
      2,
    ],
  ] as const)('%s: forward and every gradient (training-mode gate)', async (_name, stages, refStages, groups) => {
    const f = sequential(...stages());
    expect(f.groups).toBe(groups);
    const gate = () => gateBuffer(engine, [0, 2, KEY, 1]);
    expect(maxAbsDiff(await layerForward(f, u, qd, batch, gate()), refSequentialForward(refStages, u, qd))).toBeLessThan(1e-5);
    const expected = refSequentialVjp(refStages, u, qd, g);
    const grads = await layerAdjoint(f, u, qd, g, batch, { gate: gate(), add: extra });
    expect(maxAbsDiff(grads.du, expected.du.map((v, i) => v + extra[i]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(grads.dQd, expected.dQd)).toBeLessThan(1e-5);
    for (const name of ['0.weight', '0.bias']) expect(maxAbsDiff(grads.dParams[name], expected.dParams[name]), name).toBeLessThan(1e-5);
    expect(maxAbs(expected.dParams['0.weight'])).toBeGreaterThan(0.05);
    f.dispose();
  });

  it('conv2d → add(Qd) → groupNorm → relu (conv and norm kernels, each with its chain): forward and every gradient', async () => {
    const C = 2;
    const [height, width] = [3, 2];
    const size = height * width * C;
    const r = rng(77);
    const conv: RefConv2d = { height, width, inChannels: C, outChannels: C, weight: f32(randomArray(r, 9 * C * C, 0.4)), bias: f32(randomArray(r, C, 0.2)) };
    const norm: RefGroupNorm = { groups: 1, gamma: f32(randomArray(r, C, 1)), beta: f32(randomArray(r, C, 0.3)), eps: 1e-5 };
    const f = sequential(
      conv2d(engine, { height, width, inChannels: C, outChannels: C, weight: Float32Array.from(conv.weight), bias: Float32Array.from(conv.bias) }),
      add(Qd),
      groupNorm(engine, { groups: 1, gamma: Float32Array.from(norm.gamma), beta: Float32Array.from(norm.beta), eps: norm.eps }),
      relu(),
    );
    // conv2d takes add(Qd) into its epilogue, groupNorm the relu into its own: two kernels.
    expect(f.groups).toBe(2);
    const refStages: RefStage[] = [
      { forward: (x) => refConv2dForward(conv, x), vjp: (x, _q, gg) => {
        const grads = refConv2dVjp(conv, x, gg);
        return { dx: grads.dx, dParams: { weight: grads.dWeight, bias: grads.dBias } };
      } },
      refAddQdStage,
      refNormStage(norm, size),
      refActivationStage('relu'),
    ];
    const x = f32(randomArray(r, batch * size, 1));
    const q = f32(randomArray(r, batch * size, 1));
    const gg = f32(randomArray(r, batch * size, 1));
    expect(maxAbsDiff(await layerForward(f, x, q, batch), refSequentialForward(refStages, x, q))).toBeLessThan(1e-5);
    const expected = refSequentialVjp(refStages, x, q, gg);
    const grads = await layerAdjoint(f, x, q, gg, batch);
    expect(maxAbsDiff(grads.du, expected.du)).toBeLessThan(1e-4);
    expect(maxAbsDiff(grads.dQd, expected.dQd)).toBeLessThan(1e-4);
    expect(Object.keys(grads.dParams).sort()).toEqual(['0.bias', '0.weight', '2.beta', '2.gamma']);
    for (const name of Object.keys(grads.dParams)) expect(maxAbsDiff(grads.dParams[name], expected.dParams[name]), name).toBeLessThan(1e-4);
    f.dispose();
  });
});

describe('conv2d takes the epilogue hook', () => {
  it('conv2d → add(Qd) → relu → dropout fused equals stage by stage, bit for bit, forward and adjoint (training mode)', async () => {
    const C = 3;
    const [height, width] = [3, 4];
    const size = height * width * C;
    const r = rng(91);
    const weight = f32(randomArray(r, 9 * C * C, 0.4));
    const bias = f32(randomArray(r, C, 0.2));
    const build = (fuse: boolean) => sequential(
      { fuse },
      conv2d(engine, { height, width, inChannels: C, outChannels: C, weight: Float32Array.from(weight), bias: Float32Array.from(bias) }),
      add(Qd),
      relu(),
      dropout(0.3),
    );
    const x = f32(randomArray(r, batch * size, 1));
    const q = f32(randomArray(r, batch * size, 1));
    const gg = f32(randomArray(r, batch * size, 1));
    const added = f32(randomArray(r, batch * size, 1));
    const results = [];
    for (const fuse of [true, false]) {
      const f = build(fuse);
      expect(f.groups).toBe(fuse ? 1 : 4);
      const forward = await layerForward(f, x, q, batch, gateBuffer(engine, [0, 5, KEY, 1]));
      const grads = await layerAdjoint(f, x, q, gg, batch, { gate: gateBuffer(engine, [0, 5, KEY, 1]), add: added });
      results.push({ forward, grads });
      f.dispose();
    }
    const [fused, unfused] = results;
    // Some elements dropped, some kept: the mask is really applied.
    expect(fused.forward.some((v) => v === 0)).toBe(true);
    expect(fused.forward.some((v) => v > 0)).toBe(true);
    expect(Array.from(fused.forward)).toEqual(Array.from(unfused.forward));
    expect(Array.from(fused.grads.du)).toEqual(Array.from(unfused.grads.du));
    expect(Array.from(fused.grads.dQd)).toEqual(Array.from(unfused.grads.dQd));
    for (const name of ['0.weight', '0.bias']) expect(Array.from(fused.grads.dParams[name]), name).toEqual(Array.from(unfused.grads.dParams[name]));
  });
});

describe('groupNorm and layerNorm take the epilogue hook', () => {
  const C = 4;
  const [height, width] = [2, 3];
  const size = height * width * C;
  const r = rng(314);
  const gamma = f32(randomArray(r, C, 1));
  const beta = f32(randomArray(r, C, 0.3));
  const rowGamma = f32(randomArray(r, size, 1));
  const rowBeta = f32(randomArray(r, size, 0.3));
  const x = f32(randomArray(r, batch * size, 1));
  const q = f32(randomArray(r, batch * size, 1));
  const gg = f32(randomArray(r, batch * size, 1));
  const added = f32(randomArray(r, batch * size, 1));

  it.each([
    ['groupNorm (2 groups) → add(Qd) → gelu → dropout', () => [groupNorm(engine, { groups: 2, gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) }), add(Qd), gelu(), dropout(0.3)]],
    ['layerNorm → relu → add(Qd) → tanh', () => [
      layerNorm(engine, { gamma: Float32Array.from(rowGamma), beta: Float32Array.from(rowBeta) }), relu(), add(Qd), tanh(),
    ]],
  ] as const)('%s: fused equals stage by stage, bit for bit, forward and adjoint (training mode)', async (_name, stages) => {
    const results = [];
    for (const fuse of [true, false]) {
      const f = sequential({ fuse, featureSize: size }, ...stages());
      expect(f.groups).toBe(fuse ? 1 : 4);
      const forward = await layerForward(f, x, q, batch, gateBuffer(engine, [0, 5, KEY, 1]));
      const grads = await layerAdjoint(f, x, q, gg, batch, { gate: gateBuffer(engine, [0, 5, KEY, 1]), add: added });
      results.push({ forward, grads });
      f.dispose();
    }
    const [fused, unfused] = results;
    expect(bits(fused.forward)).toEqual(bits(unfused.forward));
    expect(bits(fused.grads.du)).toEqual(bits(unfused.grads.du));
    expect(bits(fused.grads.dQd)).toEqual(bits(unfused.grads.dQd));
    expect(Object.keys(fused.grads.dParams).sort()).toEqual(['0.beta', '0.gamma']);
    for (const name of ['0.gamma', '0.beta']) expect(bits(fused.grads.dParams[name]), name).toEqual(bits(unfused.grads.dParams[name]));
    // Not vacuous: the chain changes the output and every gradient is far from zero.
    expect(maxAbs(fused.grads.dQd)).toBeGreaterThan(0.1);
    expect(maxAbs(fused.grads.dParams['0.gamma'])).toBeGreaterThan(0.05);
  });

  it('groupNorm → add(Qd) → gelu → dropout, fused: forward and every gradient match the float64 reference (the mask of stage 3)', async () => {
    const evalIndex = 6;
    const factors = refDropoutStageFactors({ rate: 0.3, noise: 'per-iteration' }, KEY, 3, evalIndex, batch * size);
    expect(factors.some((v) => v === 0) && factors.some((v) => v > 1)).toBe(true);
    const norm: RefGroupNorm = { groups: 2, gamma, beta, eps: 1e-5 };
    const refStages: RefStage[] = [
      refNormStage(norm, size),
      refAddQdStage,
      refActivationStage('gelu'),
      { forward: (v) => v.map((e, i) => e * factors[i]), vjp: (_v, _q, g2) => ({ dx: g2.map((e, i) => e * factors[i]) }) },
    ];
    const f = sequential({ featureSize: size }, groupNorm(engine, { groups: 2, gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) }), add(Qd), gelu(), dropout(0.3));
    expect(f.groups).toBe(1);
    const gate = () => gateBuffer(engine, [0, evalIndex, KEY, 1]);
    expect(maxAbsDiff(await layerForward(f, x, q, batch, gate()), refSequentialForward(refStages, x, q))).toBeLessThan(1e-5);
    const expected = refSequentialVjp(refStages, x, q, gg);
    const grads = await layerAdjoint(f, x, q, gg, batch, { gate: gate(), add: added });
    expect(maxAbsDiff(grads.du, expected.du.map((v, i) => v + added[i]))).toBeLessThan(1e-4);
    expect(maxAbsDiff(grads.dQd, expected.dQd)).toBeLessThan(1e-5);
    for (const name of ['gamma', 'beta']) expect(maxAbsDiff(grads.dParams[`0.${name}`], expected.dParams[`0.${name}`]), name).toBeLessThan(1e-4);
    f.dispose();
  });
});

describe('an MDEQ cell, conv2d → add(Qd) → groupNorm → relu: two kernels', () => {
  it('f is 2 dispatches (fuse: false: 4); per iteration Picard 2 (the norm takes the step: shaders/picard_norm_step.wgsl), Anderson 3 and Broyden 4 (the norm measuring: anderson_norm_measure.wgsl, broyden_norm_step.wgsl), each 3 fewer than unfused, with the same iterates to rounding', async () => {
    const C = 4;
    const [height, width] = [3, 3];
    const size = height * width * C;
    const r = rng(5);
    const weight = f32(randomArray(r, 9 * C * C, 0.15));
    const bias = f32(randomArray(r, C, 0.1));
    const gamma = f32(randomArray(r, C, 0.5));
    const beta = f32(randomArray(r, C, 0.3));
    const build = (fuse: boolean) => sequential(
      { fuse },
      conv2d(engine, { height, width, inChannels: C, outChannels: C, weight: Float32Array.from(weight), bias: Float32Array.from(bias) }),
      add(Qd),
      groupNorm(engine, { groups: 2, gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) }),
      relu(),
    );
    const q = engine.tensor(Float32Array.from(randomArray(r, batch * size, 1)), [batch, size]);
    const fused = build(true);
    const unfused = build(false);
    expect([fused.groups, unfused.groups]).toEqual([2, 4]);
    // Unfused: the layer's 4 kernels, then the generic steps (Picard 1, Anderson 2, Broyden 3).
    const expected = { picard: [2, 5], anderson: [3, 6], broyden: [4, 7] };
    for (const [name, solver] of [['picard', picard], ['anderson', anderson], ['broyden', broyden]] as const) {
      expect(await dispatchesPerIteration(solver, fused, q), name).toBe(expected[name][0]);
      expect(await dispatchesPerIteration(solver, unfused, q), `${name}, fuse: false`).toBe(expected[name][1]);
      const x = await solver(fused, q, { eps: 0, maxDepth: 10 });
      const y = await solver(unfused, q, { eps: 0, maxDepth: 10 });
      expect(x.tnstep, name).toBe(y.tnstep);
      const ux = await x.uStar.read();
      expect(maxAbs(ux), name).toBeGreaterThan(0.1);
      expectRounding(ux, await y.uStar.read(), 256, `${name}: uStar`);
      x.dispose();
      y.dispose();
    }
    for (const owned of [fused, unfused, q]) owned.dispose();
  });
});
