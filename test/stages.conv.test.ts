// The conv2d stage (3×3, stride 1, 'same' padding, NHWC; shaders/stages/conv2d.wgsl) against the
// float64 oracle (src/reference/conv2d.ts): forward and every adjoint output, at odd image sizes,
// channel counts that are not multiples of the kernels' channel quads, batch 1 and > 1; the
// oracle's VJP checked by central finite differences; the gate; validation errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, type Engine, type Tensor } from '../src';
import { BufferUsage } from '../src/gpu/flags';
import { conv2d } from '../src/layers/stages/conv2d';
import type { StageKernels } from '../src/layers/stage';
import { refConv2dForward, refConv2dVjp, type RefConv2d } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';
import { expectError, submit as submitPass } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const f32 = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));
const abs = (a: Float64Array): Float64Array => a.map(Math.abs);

/** A random convolution and batch, float32-representable so the GPU sees the oracle's exact inputs. */
function problem(seed: number, rows: number, h: number, w: number, ci: number, co: number): { ref: RefConv2d; x: Float64Array; dy: Float64Array } {
  const random = rng(seed);
  return {
    ref: {
      height: h,
      width: w,
      inChannels: ci,
      outChannels: co,
      weight: f32(randomArray(random, 9 * ci * co, 1 / Math.sqrt(9 * ci))),
      bias: f32(randomArray(random, co, 0.5)),
    },
    x: f32(randomArray(random, rows * h * w * ci)),
    dy: f32(randomArray(random, rows * h * w * co)),
  };
}

/**
 * |got − expected| ≤ (terms + 2)·2⁻²⁴·bound elementwise: the worst-case float32 rounding of a sum
 * of `terms` products whose absolute values add up to `bound`, in any order. A wrong index or a
 * missed tap is off by O(1).
 */
function expectClose(got: Float32Array, expected: Float64Array, bound: Float64Array, terms: number): void {
  expect(got.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]) / ((terms + 2) * 2 ** -24 * bound[i] + 1e-30));
  expect(worst).toBeLessThanOrEqual(1);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const submit = (encode: (pass: GPUComputePassEncoder) => void): void => submitPass(engine, encode);

const SENTINEL = 7;
const filled = (size: number): Tensor => engine.tensor(new Float32Array(size).fill(SENTINEL), [size]);

describe('reference conv2d', () => {
  it('its VJP matches central finite differences of ⟨dy, y(x, weight, bias)⟩', () => {
    const { ref, x, dy } = problem(11, 2, 3, 4, 2, 3);
    const objective = (conv: RefConv2d, input: Float64Array): number => refConv2dForward(conv, input).reduce((s, v, i) => s + v * dy[i], 0);
    const grads = refConv2dVjp(ref, x, dy);
    const h = 1e-5;
    const central = (bump: (delta: number) => number): number => (bump(h) - bump(-h)) / (2 * h);
    const bumped = (a: Float64Array, i: number, delta: number): Float64Array => {
      const b = Float64Array.from(a);
      b[i] += delta;
      return b;
    };
    const fdX = Float64Array.from(x, (_, i) => central((d) => objective(ref, bumped(x, i, d))));
    const fdW = Float64Array.from(ref.weight, (_, i) => central((d) => objective({ ...ref, weight: bumped(ref.weight, i, d) }, x)));
    const fdB = Float64Array.from(ref.bias, (_, i) => central((d) => objective({ ...ref, bias: bumped(ref.bias, i, d) }, x)));
    expect(maxAbsDiff(grads.dx, fdX)).toBeLessThan(1e-9);
    expect(maxAbsDiff(grads.dWeight, fdW)).toBeLessThan(1e-9);
    expect(maxAbsDiff(grads.dBias, fdB)).toBeLessThan(1e-9);
    expect(maxAbs(grads.dWeight)).toBeGreaterThan(0.1);
  });

  it('pads with zeros: a corner output sees only the 2×2 taps inside the image', () => {
    const weight = new Float64Array(9).fill(1);
    const x = Float64Array.from({ length: 9 }, (_, i) => i + 1); // 3×3 image, one channel
    const y = refConv2dForward({ height: 3, width: 3, inChannels: 1, outChannels: 1, weight, bias: new Float64Array(1) }, x);
    expect(y[0]).toBe(1 + 2 + 4 + 5);
    expect(y[4]).toBe(45);
  });
});

// [batch, height, width, inChannels, outChannels]
const CASES: [number, number, number, number, number][] = [
  [1, 5, 7, 3, 2],
  [3, 5, 7, 3, 2],
  [2, 4, 3, 5, 6],
  [3, 1, 1, 2, 5],
];

describe('GPU conv2d stage', () => {
  it.each(CASES)('batch %i, %i×%i, %i → %i channels: forward, ∂x, ∂weight, ∂bias match the float64 reference', async (batch, h, w, ci, co) => {
    const { ref, x, dy } = problem(batch * 100 + h * 10 + w + ci * co, batch, h, w, ci, co);
    const stage = conv2d(engine, { height: h, width: w, weight: Float32Array.from(ref.weight), bias: Float32Array.from(ref.bias) });
    expect([stage.inChannels, stage.outChannels, stage.inputSize]).toEqual([ci, co, h * w * ci]);
    const k: StageKernels = stage.instantiate(engine, h * w * ci, 0);
    expect(k.outputSize).toBe(h * w * co);
    await k.prepare(batch);
    const xT = engine.tensor(Float32Array.from(x), [x.length]);
    const dyT = engine.tensor(Float32Array.from(dy), [dy.length]);
    const y = filled(dy.length);
    const dx = filled(x.length);
    const dW = filled(9 * ci * co);
    const db = filled(co);
    const gate = engine.openGate();
    submit((pass) => {
      k.encodeForward(pass, { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gate }, batch);
      k.encodeAdjoint(pass, {
        input: xT.buffer,
        Qd: xT.buffer,
        gradOutput: dyT.buffer,
        gradInput: dx.buffer,
        gradParams: { weight: dW.buffer, bias: db.buffer },
        gate,
      }, batch);
    });
    const expected = refConv2dVjp(ref, x, dy);
    // The same sums over absolute values bound the rounding.
    const absRef: RefConv2d = { ...ref, weight: abs(ref.weight), bias: abs(ref.bias) };
    const bounds = refConv2dVjp(absRef, abs(x), abs(dy));
    expectClose(await y.read(), refConv2dForward(ref, x), refConv2dForward(absRef, abs(x)), 9 * ci + 1);
    expectClose(await dx.read(), expected.dx, bounds.dx, 9 * co);
    expectClose(await dW.read(), expected.dWeight, bounds.dWeight, batch * h * w);
    expectClose(await db.read(), expected.dBias, bounds.dBias, batch * h * w);
    expect(maxAbs(expected.dWeight)).toBeGreaterThan(0.05);
    for (const t of [xT, dyT, y, dx, dW, db]) t.dispose();
  });

  it('computes only the gradients given, deterministically, and uses weight tensors in place', async () => {
    const [batch, h, w, ci, co] = [2, 3, 5, 2, 3];
    const { ref, x, dy } = problem(5, batch, h, w, ci, co);
    const weight = engine.tensor(Float32Array.from(ref.weight), [3, 3, ci, co]);
    const stage = conv2d(engine, { height: h, width: w, weight, bias: Array.from(ref.bias) });
    expect(stage.params.weight).toBe(weight);
    const k = stage.instantiate(engine, h * w * ci, 0);
    await k.prepare(batch);
    const xT = engine.tensor(Float32Array.from(x), [x.length]);
    const dyT = engine.tensor(Float32Array.from(dy), [dy.length]);
    const y = filled(dy.length);
    const dW1 = filled(9 * ci * co);
    const dW2 = filled(9 * ci * co);
    const db = filled(co);
    const gate = engine.openGate();
    const io = { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gradOutput: dyT.buffer, gate };
    submit((pass) => {
      k.encodeAdjoint(pass, { ...io, gradParams: { weight: dW1.buffer } }, batch);
      k.encodeAdjoint(pass, { ...io, gradParams: { weight: dW2.buffer } }, batch);
    });
    const first = await dW1.read();
    expect(maxAbsDiff(first, refConv2dVjp(ref, x, dy).dWeight)).toBeLessThan(1e-5);
    expect(Array.from(await dW2.read())).toEqual(Array.from(first));
    // Neither y nor ∂bias was asked for.
    expect(Array.from(await db.read())).toEqual(new Array(co).fill(SENTINEL));
    expect(Array.from(await y.read())).toEqual(new Array(dy.length).fill(SENTINEL));
    // The weight tensor is read at encode time: writing it changes the next forward.
    const zeros = new Float64Array(ref.weight.length);
    engine.device.queue.writeBuffer(weight.buffer, 0, new Float32Array(zeros.length));
    submit((pass) => k.encodeForward(pass, { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gate }, batch));
    expect(maxAbsDiff(await y.read(), refConv2dForward({ ...ref, weight: zeros }, x))).toBe(0);
    for (const t of [xT, dyT, y, dW1, dW2, db, weight]) t.dispose();
  });

  it('does nothing when the gate is closed (word 0 set)', async () => {
    const [batch, h, w, ci, co] = [2, 3, 3, 2, 2];
    const { ref, x, dy } = problem(9, batch, h, w, ci, co);
    const stage = conv2d(engine, { height: h, width: w, weight: Float32Array.from(ref.weight), bias: Float32Array.from(ref.bias), inChannels: ci, outChannels: co });
    const k = stage.instantiate(engine, h * w * ci, 0);
    await k.prepare(batch);
    const closed = engine.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST });
    engine.device.queue.writeBuffer(closed, 0, Uint32Array.from([1, 0, 0, 0]));
    const xT = engine.tensor(Float32Array.from(x), [x.length]);
    const dyT = engine.tensor(Float32Array.from(dy), [dy.length]);
    const y = filled(dy.length);
    const dx = filled(x.length);
    const dW = filled(9 * ci * co);
    const db = filled(co);
    submit((pass) => {
      k.encodeForward(pass, { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gate: closed }, batch);
      k.encodeAdjoint(pass, {
        input: xT.buffer,
        Qd: xT.buffer,
        gradOutput: dyT.buffer,
        gradInput: dx.buffer,
        gradParams: { weight: dW.buffer, bias: db.buffer },
        gate: closed,
      }, batch);
    });
    for (const t of [y, dx, dW, db]) expect(Array.from(await t.read())).toEqual(new Array(t.size).fill(SENTINEL));
    // The same encodes with an open gate do write (the check above can fail).
    submit((pass) => k.encodeForward(pass, { input: xT.buffer, output: y.buffer, Qd: xT.buffer, gate: engine.openGate() }, batch));
    expect(maxAbsDiff(await y.read(), refConv2dForward(ref, x))).toBeLessThan(1e-5);
    closed.destroy();
    for (const t of [xT, dyT, y, dx, dW, db]) t.dispose();
  });

  it('rejects inconsistent shapes with ShapeErrors naming the argument', () => {
    const bias = [0, 0];
    const weight = new Float32Array(9 * 3 * 2);
    expectError(() => conv2d(engine, { height: 5, width: 7, weight: engine.tensor(new Float32Array(18), [3, 3, 2]), bias }), ShapeError, 'weight');
    expectError(() => conv2d(engine, { height: 5, width: 7, weight: engine.tensor(new Float32Array(36), [3, 2, 3, 2]), bias }), ShapeError, 'weight');
    expectError(() => conv2d(engine, { height: 5, width: 7, weight: new Float32Array(9 * 3 * 2 + 1), bias }), ShapeError, 'weight');
    expectError(() => conv2d(engine, { height: 5, width: 7, weight, bias, inChannels: 2 }), ShapeError, 'weight');
    expectError(() => conv2d(engine, { height: 5, width: 7, weight: engine.tensor(weight, [3, 3, 3, 2]), bias: [0, 0, 0] }), ShapeError, 'bias');
    expectError(() => conv2d(engine, { height: 5, width: 7, weight, bias: [0, 0, 0], outChannels: 2 }), ShapeError, 'bias');
    expectError(() => conv2d(engine, { height: 0, width: 7, weight, bias }), ShapeError, 'height');
    expectError(() => conv2d(engine, { height: 5, width: 2.5, weight, bias }), ShapeError, 'width');
    expectError(() => conv2d(engine, { height: 5, width: 7, weight, bias, inChannels: -1 }), ShapeError, 'inChannels');
    const stage = conv2d(engine, { height: 5, width: 7, weight, bias });
    expect([stage.inChannels, stage.outChannels]).toEqual([3, 2]);
    expectError(() => stage.instantiate(engine, 5 * 7 * 2, 2), ShapeError, 'stages[2]');
  });
});
