// The groupNorm and layerNorm stages (shaders/stages/norm.wgsl) against the float64 oracle
// (src/reference/norm.ts): forward and every adjoint output at odd sizes, batch 1 and > 1; the
// oracle's VJPs checked by central finite differences; the gate; validation errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError, ShapeError, type Engine, type Tensor } from '../src';
import { BufferUsage } from '../src/gpu/flags';
import type { Stage, StageKernels } from '../src/layers/stage';
import { groupNorm, layerNorm } from '../src/layers/stages/norm';
import {
  refGroupNormForward,
  refGroupNormVjp,
  refLayerNormForward,
  refLayerNormVjp,
  type RefGroupNorm,
  type RefNormGrads,
} from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';
import { expectError, submit as submitPass } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const f32 = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Float32 agreement: max |got − expected| ≤ 1e-4 · max |expected| (a wrong index is off by O(1)). */
function expectClose(got: Float32Array, expected: Float64Array): void {
  expect(got.length).toBe(expected.length);
  expect(maxAbs(expected)).toBeGreaterThan(1e-3);
  expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-4 * maxAbs(expected));
}

const submit = (encode: (pass: GPUComputePassEncoder) => void): void => submitPass(engine, encode);

const SENTINEL = 7;
const filled = (size: number): Tensor => engine.tensor(new Float32Array(size).fill(SENTINEL), [size]);

/** Random inputs with a per-row offset, so that subtracting the mean matters. */
function data(seed: number, channels: number, size: number): { gamma: Float64Array; beta: Float64Array; x: Float64Array; dy: Float64Array } {
  const random = rng(seed);
  const x = randomArray(random, size).map((v, i) => v + 0.5 + (i % 3));
  return {
    gamma: f32(randomArray(random, channels).map((v) => v + 1.5)),
    beta: f32(randomArray(random, channels, 0.5)),
    x: f32(x),
    dy: f32(randomArray(random, size)),
  };
}

interface Outputs {
  y: Float32Array;
  dx: Float32Array;
  dGamma: Float32Array;
  dBeta: Float32Array;
}

/** Runs forward and the full adjoint of `stage` on rows of `rowSize`; every output starts at SENTINEL. */
async function runStage(stage: Stage, rowSize: number, batch: number, x: Float64Array, dy: Float64Array, gate = engine.openGate()): Promise<Outputs> {
  const k: StageKernels = stage.instantiate(engine, rowSize, 0);
  expect(k.outputSize).toBe(rowSize);
  await k.prepare(batch);
  const channels = stage.params.gamma.size;
  const xT = engine.tensor(Float32Array.from(x), [x.length]);
  const dyT = engine.tensor(Float32Array.from(dy), [dy.length]);
  const [y, dx, dGamma, dBeta] = [filled(x.length), filled(x.length), filled(channels), filled(channels)];
  submit((pass) => {
    k.encodeForward(pass, { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gate }, batch);
    k.encodeAdjoint(pass, {
      input: xT.buffer,
      Qd: xT.buffer,
      gradOutput: dyT.buffer,
      gradInput: dx.buffer,
      gradParams: { gamma: dGamma.buffer, beta: dBeta.buffer },
      gate,
    }, batch);
  });
  const out = { y: await y.read(), dx: await dx.read(), dGamma: await dGamma.read(), dBeta: await dBeta.read() };
  for (const t of [xT, dyT, y, dx, dGamma, dBeta]) t.dispose();
  return out;
}

function expectMatches(got: Outputs, y: Float64Array, grads: RefNormGrads): void {
  expectClose(got.y, y);
  expectClose(got.dx, grads.dx);
  expectClose(got.dGamma, grads.dGamma);
  expectClose(got.dBeta, grads.dBeta);
}

describe('reference normalisations', () => {
  const h = 1e-5;
  const central = (bump: (delta: number) => number): number => (bump(h) - bump(-h)) / (2 * h);
  const bumped = (a: Float64Array, i: number, delta: number): Float64Array => {
    const b = Float64Array.from(a);
    b[i] += delta;
    return b;
  };

  it('groupNorm: its VJP matches central finite differences of ⟨dy, y(x, gamma, beta)⟩', () => {
    const rows = 2;
    const { gamma, beta, x, dy } = data(3, 6, rows * 3 * 6);
    const norm: RefGroupNorm = { groups: 3, gamma, beta, eps: 1e-5 };
    const objective = (n: RefGroupNorm, input: Float64Array): number => refGroupNormForward(n, input, rows).reduce((s, v, i) => s + v * dy[i], 0);
    const grads = refGroupNormVjp(norm, x, dy, rows);
    const fdX = Float64Array.from(x, (_, i) => central((d) => objective(norm, bumped(x, i, d))));
    const fdGamma = Float64Array.from(gamma, (_, i) => central((d) => objective({ ...norm, gamma: bumped(gamma, i, d) }, x)));
    const fdBeta = Float64Array.from(beta, (_, i) => central((d) => objective({ ...norm, beta: bumped(beta, i, d) }, x)));
    expect(maxAbsDiff(grads.dx, fdX)).toBeLessThan(1e-8);
    expect(maxAbsDiff(grads.dGamma, fdGamma)).toBeLessThan(1e-8);
    expect(maxAbsDiff(grads.dBeta, fdBeta)).toBeLessThan(1e-8);
    expect(maxAbs(grads.dx)).toBeGreaterThan(0.1);
  });

  it('layerNorm: its VJP matches central finite differences, and each row comes out with mean 0, variance ≈ 1', () => {
    const { gamma, beta, x, dy } = data(4, 7, 2 * 7);
    const norm = { gamma, beta, eps: 1e-5 };
    const objective = (n: typeof norm, input: Float64Array): number => refLayerNormForward(n, input).reduce((s, v, i) => s + v * dy[i], 0);
    const grads = refLayerNormVjp(norm, x, dy);
    const fdX = Float64Array.from(x, (_, i) => central((d) => objective(norm, bumped(x, i, d))));
    const fdGamma = Float64Array.from(gamma, (_, i) => central((d) => objective({ ...norm, gamma: bumped(gamma, i, d) }, x)));
    expect(maxAbsDiff(grads.dx, fdX)).toBeLessThan(1e-8);
    expect(maxAbsDiff(grads.dGamma, fdGamma)).toBeLessThan(1e-8);
    const plain = refLayerNormForward({ gamma: new Float64Array(7).fill(1), beta: new Float64Array(7), eps: 0 }, x.subarray(0, 7));
    expect(Math.abs(plain.reduce((s, v) => s + v, 0))).toBeLessThan(1e-12);
    expect(plain.reduce((s, v) => s + v * v, 0) / 7).toBeCloseTo(1, 12);
  });
});

describe('GPU groupNorm stage', () => {
  // [batch, channels, groups, spatial]
  const CASES: [number, number, number, number][] = [
    [1, 6, 3, 5],
    [3, 6, 3, 5],
    [2, 10, 2, 37], // groups of 185 elements: more than one per thread of the 256-thread reduction
    [3, 9, 3, 2], // a partial last channel quad in the parameter gradients
  ];
  it.each(CASES)('batch %i, %i channels in %i groups, spatial %i: forward, ∂x, ∂gamma, ∂beta match the float64 reference', async (batch, channels, groups, spatial) => {
    const rowSize = channels * spatial;
    const { gamma, beta, x, dy } = data(batch * 1000 + channels * 10 + spatial, channels, batch * rowSize);
    const stage = groupNorm(engine, { groups, gamma: Float32Array.from(gamma), beta: Array.from(beta) });
    expect(stage.kind).toBe('groupNorm');
    expect(stage.inputSize).toBeUndefined();
    const norm: RefGroupNorm = { groups, gamma, beta, eps: 1e-5 };
    const got = await runStage(stage, rowSize, batch, x, dy);
    expectMatches(got, refGroupNormForward(norm, x, batch), refGroupNormVjp(norm, x, dy, batch));
  });

  it('computes ∂gamma without ∂x (statistics from their own kernel), and honours eps', async () => {
    const [batch, channels, groups, spatial] = [2, 6, 2, 3];
    const rowSize = channels * spatial;
    const { gamma, beta, x, dy } = data(8, channels, batch * rowSize);
    // Small groups of nearly equal values, so that eps = 0.5 changes the result a lot.
    const xs = f32(x.map((v) => v * 0.01));
    const eps = 0.5;
    const stage = groupNorm(engine, { groups, gamma: Float32Array.from(gamma), beta: Float32Array.from(beta), eps });
    const k = stage.instantiate(engine, rowSize, 0);
    await k.prepare(batch);
    const xT = engine.tensor(Float32Array.from(xs), [xs.length]);
    const dyT = engine.tensor(Float32Array.from(dy), [dy.length]);
    const [y, dGamma] = [filled(xs.length), filled(channels)];
    const gate = engine.openGate();
    submit((pass) => {
      k.encodeForward(pass, { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gate }, batch);
      k.encodeAdjoint(pass, { input: xT.buffer, Qd: xT.buffer, gradOutput: dyT.buffer, gradParams: { gamma: dGamma.buffer }, gate }, batch);
    });
    const norm: RefGroupNorm = { groups, gamma, beta, eps };
    expectClose(await y.read(), refGroupNormForward(norm, xs, batch));
    expectClose(await dGamma.read(), refGroupNormVjp(norm, xs, dy, batch).dGamma);
    for (const t of [xT, dyT, y, dGamma]) t.dispose();
  });

  it('does nothing when the gate is closed (word 0 set)', async () => {
    const [batch, channels, groups, spatial] = [2, 6, 3, 5];
    const { gamma, beta, x, dy } = data(6, channels, batch * channels * spatial);
    const stage = groupNorm(engine, { groups, gamma: Float32Array.from(gamma), beta: Float32Array.from(beta) });
    const closed = engine.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST });
    engine.device.queue.writeBuffer(closed, 0, Uint32Array.from([1, 0, 0, 0]));
    const got = await runStage(stage, channels * spatial, batch, x, dy, closed);
    for (const out of [got.y, got.dx, got.dGamma, got.dBeta]) expect(Array.from(out)).toEqual(new Array(out.length).fill(SENTINEL));
    closed.destroy();
  });

  it('rejects groups that do not divide the channels, mismatched beta, bad eps and row sizes', () => {
    const six = new Float32Array(6).fill(1);
    expectError(() => groupNorm(engine, { groups: 4, gamma: six, beta: six }), ShapeError, 'groups');
    expectError(() => groupNorm(engine, { groups: 0, gamma: six, beta: six }), ShapeError, 'groups');
    expectError(() => groupNorm(engine, { groups: 3, gamma: six, beta: new Float32Array(5) }), ShapeError, 'beta');
    expectError(() => groupNorm(engine, { groups: 3, gamma: engine.tensor(six, [2, 3]), beta: six }), ShapeError, 'gamma');
    expectError(() => groupNorm(engine, { groups: 3, gamma: six, beta: six, eps: -1 }), OptionError, 'eps');
    const stage = groupNorm(engine, { groups: 3, gamma: six, beta: six });
    expectError(() => stage.instantiate(engine, 6 * 5 + 1, 1), ShapeError, 'stages[1]');
  });
});

describe('GPU layerNorm stage', () => {
  it.each([
    [1, 13],
    [3, 13],
    [2, 600], // more features than threads
  ])('batch %i, %i features: forward, ∂x, ∂gamma, ∂beta match the float64 reference', async (batch, d) => {
    const { gamma, beta, x, dy } = data(batch * 7 + d, d, batch * d);
    const stage = layerNorm(engine, { gamma: Float32Array.from(gamma), beta: engine.tensor(Float32Array.from(beta), [d]) });
    expect([stage.kind, stage.inputSize]).toEqual(['layerNorm', d]);
    const norm = { gamma, beta, eps: 1e-5 };
    const got = await runStage(stage, d, batch, x, dy);
    expectMatches(got, refLayerNormForward(norm, x), refLayerNormVjp(norm, x, dy));
  });

  it('takes only rows of its feature count', () => {
    const stage = layerNorm(engine, { gamma: new Float32Array(13).fill(1), beta: new Float32Array(13) });
    expectError(() => stage.instantiate(engine, 26, 3), ShapeError, 'stages[3]');
    expectError(() => layerNorm(engine, { gamma: [], beta: [] }), ShapeError, 'gamma');
  });
});
