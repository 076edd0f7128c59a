// Errors only the device can see. A wrapped buffer that is destroyed, belongs to another device
// or is not a buffer at all; GPU work the device rejects (each call's submits are observed, never
// left to Dawn's uncaptured-error log while the call resolves with garbage); and a lost or
// destroyed device, which every public call reports as DeviceLostError naming the call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeviceLostError,
  DisposedError,
  Engine,
  EngineMismatchError,
  GpuValidationError,
  ShapeError,
  gdeq,
  gradcheck,
  ift,
  jfb,
  linear,
  mse,
  picard,
  softmaxCrossEntropy,
  type TanhBlock,
  type Tensor,
  adam,
  gradientAccumulator,
  implicitBlock,
  sgd,
} from '../src';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';
import { SOLVERS, Usage, expectTyped, rejection, thrown, withinTime } from './helpers/errors';

const D = 4;
const BATCH = 3;
const ALL = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;

let engine: Engine;
/** A second engine: its buffers are "of another device" for `engine`. */
let other: Engine;
let f: TanhBlock;
let wData: Float32Array;
let bData: Float32Array;
let qdData: Float32Array;
/** Errors the device reported to no one (they must all be caught by the calls). */
const uncaptured: string[] = [];

beforeAll(async () => {
  engine = await createTestEngine();
  other = await createTestEngine();
  engine.device.addEventListener('uncapturederror', (event) => {
    uncaptured.push((event as GPUUncapturedErrorEvent).error.message);
  });
  const random = rng(11);
  wData = Float32Array.from(randomArray(random, D * D, 0.3));
  bData = Float32Array.from(randomArray(random, D, 0.5));
  qdData = Float32Array.from(randomArray(random, BATCH * D, 1));
  f = implicitBlock(engine, { weight: wData, bias: bData });
});

afterAll(() => {
  engine?.destroy();
  other?.destroy();
});

/** A buffer of `device` holding `values`. */
function bufferOf(device: GPUDevice, values: Float32Array, usage: number = ALL): GPUBuffer {
  const buffer = device.createBuffer({ size: values.byteLength, usage });
  if (usage & Usage.COPY_DST) device.queue.writeBuffer(buffer, 0, values);
  return buffer;
}

/** `engine.wrap` of a buffer destroyed before the call. */
function destroyedBefore(values: Float32Array, shape: number[]): Tensor {
  const buffer = bufferOf(engine.device, values);
  buffer.destroy();
  return engine.wrap(buffer, shape);
}

/** `engine.wrap` of a buffer that is fine at `wrap` (the device said so) and destroyed after. */
async function destroyedAfter(values: Float32Array, shape: number[]): Promise<Tensor> {
  const buffer = bufferOf(engine.device, values);
  const tensor = engine.wrap(buffer, shape);
  expect(Array.from(await tensor.read())).toEqual(Array.from(values));
  buffer.destroy();
  return tensor;
}

function gradient(): Tensor {
  return engine.tensor(new Float32Array(BATCH * D).fill(0.1), [BATCH, D]);
}

describe('engine.wrap of what cannot be a storage buffer', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a number', 64],
    ['a plain object', {}],
    ['a buffer look-alike', { size: 64, usage: Usage.STORAGE, mapState: 'unmapped', destroy() {}, mapAsync() {} }],
    ['an array', [1, 2, 3, 4]],
  ])('rejects %s with ShapeError naming buffer', (_name, value: unknown) => {
    expectTyped(thrown(() => engine.wrap(value as GPUBuffer, [D])), ShapeError, 'buffer');
  });

  it('rejects a mapped buffer (mappedAtCreation), which no submit may use', () => {
    const buffer = engine.device.createBuffer({ size: 64, usage: Usage.STORAGE, mappedAtCreation: true });
    expectTyped(thrown(() => engine.wrap(buffer, [D])), ShapeError, 'buffer');
    buffer.unmap();
    expect(engine.wrap(buffer, [D]).shape).toEqual([D]);
    buffer.destroy();
  });

  it('read() of a wrapped buffer without COPY_SRC is a ShapeError, not a device error', async () => {
    const buffer = engine.device.createBuffer({ size: 16, usage: Usage.STORAGE });
    expectTyped(await rejection(engine.wrap(buffer, [D]).read()), ShapeError, 'tensor');
    buffer.destroy();
  });
});

describe('a wrapped buffer destroyed before engine.wrap', () => {
  it.each(SOLVERS)('%s rejects it as Qd, options.u0 or a parameter with DisposedError', async (_name, solve) => {
    expectTyped(await rejection(solve(f, destroyedBefore(qdData, [BATCH, D]))), DisposedError, 'Qd');
    const Qd = engine.tensor(qdData, [BATCH, D]);
    expectTyped(await rejection(solve(f, Qd, { u0: destroyedBefore(qdData, [BATCH, D]) })), DisposedError, 'options.u0');
    const block = implicitBlock(engine, { weight: destroyedBefore(wData, [D, D]), bias: bData });
    expectTyped(await rejection(solve(block, Qd)), DisposedError, 'f.params.weight');
    Qd.dispose();
  });

  it('read, mse, softmaxCrossEntropy, backward and an optimizer step reject it, naming their argument', async () => {
    expectTyped(await rejection(destroyedBefore(qdData, [BATCH, D]).read()), DisposedError, 'tensor');
    expectTyped(await rejection(mse(destroyedBefore(qdData, [BATCH, D]))), DisposedError, 'prediction');
    const prediction = engine.tensor(qdData, [BATCH, D]);
    expectTyped(await rejection(mse(prediction, destroyedBefore(qdData, [BATCH, D]))), DisposedError, 'target');
    expectTyped(await rejection(softmaxCrossEntropy(destroyedBefore(qdData, [BATCH, D]), [0, 1, 2])), DisposedError, 'logits');
    const result = await withinTime(jfb(f, prediction, { solver: picard }));
    expectTyped(await rejection(result.backward(destroyedBefore(qdData, [BATCH, D]))), DisposedError, 'gradUStar');
    // The rejected call does not use up the result: a good gradient still works.
    const grads = await withinTime(result.backward(gradient()));
    expect(grads.Qd.shape).toEqual([BATCH, D]);
    const param = engine.tensor(qdData, [BATCH, D]);
    const opt = adam(engine, [param]);
    expectTyped(await rejection(opt.step([destroyedBefore(qdData, [BATCH, D])])), DisposedError, 'grads[0]');
    result.dispose();
    prediction.dispose();
  });
});

describe('a wrapped buffer of another device', () => {
  const foreign = (values: Float32Array, shape: number[]): Tensor => engine.wrap(bufferOf(other.device, values), shape);

  it.each(SOLVERS)('%s rejects it with EngineMismatchError naming the argument', async (_name, solve) => {
    expectTyped(await rejection(solve(f, foreign(qdData, [BATCH, D]))), EngineMismatchError, 'Qd');
    const block = implicitBlock(engine, { weight: wData, bias: foreign(bData, [D]) });
    expectTyped(await rejection(solve(block, engine.tensor(qdData, [BATCH, D]))), EngineMismatchError, 'f.params.bias');
  });

  it('read, mse and backward reject it', async () => {
    expectTyped(await rejection(foreign(qdData, [BATCH, D]).read()), EngineMismatchError, 'tensor');
    expectTyped(await rejection(mse(foreign(qdData, [BATCH, D]))), EngineMismatchError, 'prediction');
    const result = await withinTime(gdeq(f, engine.tensor(qdData, [BATCH, D])));
    expectTyped(await rejection(result.backward(foreign(qdData, [BATCH, D]))), EngineMismatchError, 'gradUStar');
    result.dispose();
  });
});

describe('a wrapped buffer destroyed after engine.wrap: the device rejects the work, the call says so', () => {
  it.each(SOLVERS)('%s rejects with GpuValidationError (never garbage stats or a stale uStar)', async (name, solve) => {
    const good = engine.tensor(qdData, [BATCH, D]);
    const before = await withinTime(solve(f, good));
    const expected = await before.uStar.read();
    before.dispose();
    const err = await rejection(solve(f, await destroyedAfter(qdData, [BATCH, D])));
    expectTyped(err, GpuValidationError, name);
    expect((err as Error).message).toMatch(/destroyed/);
    // The engine is fine afterwards: the same solve gives the same answer.
    const after = await withinTime(solve(f, good));
    expect(after.stats.converged).toBe(true);
    expect(maxAbsDiff(await after.uStar.read(), expected)).toBe(0);
    after.dispose();
    good.dispose();
  });

  it('jfb, ift, backward, losses, an optimizer step, read, linear, an accumulator and gradcheck reject with GpuValidationError', async () => {
    expectTyped(await rejection(jfb(f, await destroyedAfter(qdData, [BATCH, D]), { solver: picard })), GpuValidationError, 'picard');
    const Qd = engine.tensor(qdData, [BATCH, D]);
    const result = await withinTime(ift(f, Qd, { solver: picard, backwardSolver: picard }));
    // ift's backward is itself a solve (the adjoint), with gradUStar as its Qd.
    expectTyped(await rejection(result.backward(await destroyedAfter(qdData, [BATCH, D]))), GpuValidationError, 'picard');
    result.dispose();
    const jfbResult = await withinTime(jfb(f, Qd, { solver: picard }));
    expectTyped(await rejection(jfbResult.backward(await destroyedAfter(qdData, [BATCH, D]))), GpuValidationError, 'backward');
    jfbResult.dispose();
    expectTyped(await rejection(mse(await destroyedAfter(qdData, [BATCH, D]))), GpuValidationError, 'mse');
    expectTyped(await rejection(softmaxCrossEntropy(await destroyedAfter(qdData, [BATCH, D]), [0, 1, 2])), GpuValidationError, 'softmaxCrossEntropy');
    const param = await destroyedAfter(qdData, [BATCH, D]);
    expectTyped(await rejection(sgd(engine, [param], { lr: 0.1 }).step([gradient()])), GpuValidationError, 'sgd.step');
    expectTyped(await rejection(param.read()), GpuValidationError, 'read');
    const dense = linear(engine, { weight: wData, bias: bData });
    expectTyped(await rejection(dense.forward(await destroyedAfter(qdData, [BATCH, D]))), GpuValidationError, 'linear.forward');
    const x = engine.tensor(qdData, [BATCH, D]);
    expectTyped(await rejection(dense.backward(x, await destroyedAfter(qdData, [BATCH, D]))), GpuValidationError, 'linear.backward');
    const accumulator = gradientAccumulator(engine, [x]);
    expectTyped(await rejection(accumulator.add([await destroyedAfter(qdData, [BATCH, D])])), GpuValidationError, 'accumulator.add');
    const block = implicitBlock(engine, { weight: await destroyedAfter(wData, [D, D]), bias: bData });
    expectTyped(await rejection(gradcheck(block)), GpuValidationError, 'gradcheck');
    accumulator.dispose();
    x.dispose();
    Qd.dispose();
  });

  it('left no error to the device’s uncaptured-error event: every one was observed by its call', async () => {
    // Runs after the tests above (same file, in order); give late reports a moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(uncaptured).toEqual([]);
  });
});

describe('a lost device in every path', () => {
  /** A fresh engine whose device is destroyed after a jfb solve, with that solve's result. */
  async function lostEngine(): Promise<{ doomed: Engine; block: TanhBlock; Qd: Tensor; pending: Awaited<ReturnType<typeof jfb>> }> {
    const doomed = await createTestEngine();
    const block = implicitBlock(doomed, { weight: wData, bias: bData });
    const Qd = doomed.tensor(qdData, [BATCH, D]);
    const pending = await withinTime(jfb(block, Qd, { solver: picard }));
    return { doomed, block, Qd, pending };
  }

  it('after device.destroy(): backward, losses, optimizer steps, accumulators, gradcheck, reads and factories report DeviceLostError', async () => {
    const { doomed, block, Qd, pending } = await lostEngine();
    const grad = doomed.tensor(new Float32Array(BATCH * D).fill(0.1), [BATCH, D]);
    const opt = adam(doomed, [block.params.weight]);
    const wGrad = doomed.zeros([D, D]);
    const dense = linear(doomed, { weight: wData, bias: bData });
    const accumulator = gradientAccumulator(doomed, [Qd]);
    const buffer = doomed.device.createBuffer({ size: 64, usage: ALL });
    doomed.device.destroy();
    await withinTime(doomed.device.lost);
    expectTyped(await rejection(pending.backward(grad)), DeviceLostError, 'backward');
    expectTyped(await rejection(mse(Qd)), DeviceLostError, 'mse');
    expectTyped(await rejection(softmaxCrossEntropy(Qd, [0, 1, 2])), DeviceLostError, 'softmaxCrossEntropy');
    expectTyped(await rejection(opt.step([wGrad])), DeviceLostError, 'adam.step');
    expectTyped(await rejection(gradcheck(block)), DeviceLostError, 'gradcheck');
    expectTyped(await rejection(dense.forward(Qd)), DeviceLostError, 'linear.forward');
    expectTyped(await rejection(accumulator.add([Qd])), DeviceLostError, 'accumulator.add');
    expectTyped(await rejection(Qd.read()), DeviceLostError, 'read');
    expectTyped(await rejection(jfb(block, Qd)), DeviceLostError, 'broyden');
    expectTyped(thrown(() => doomed.wrap(buffer, [D])), DeviceLostError, 'engine.wrap');
    expectTyped(thrown(() => linear(doomed, { weight: wData, bias: bData })), DeviceLostError, 'linear');
    expectTyped(thrown(() => adam(doomed, [block.params.weight])), DeviceLostError, 'adam');
  });

  it('after engine.destroy(), at once (before device.lost settles): wrap, tensor and zeros throw, backward and mse reject', async () => {
    const { doomed, Qd, pending } = await lostEngine();
    const buffer = doomed.device.createBuffer({ size: 64, usage: ALL });
    const grad = doomed.tensor(new Float32Array(BATCH * D).fill(0.1), [BATCH, D]);
    doomed.destroy();
    expectTyped(thrown(() => doomed.wrap(buffer, [D])), DeviceLostError, 'engine.wrap');
    expectTyped(thrown(() => doomed.tensor([1, 2], [2])), DeviceLostError, 'engine.tensor');
    expectTyped(thrown(() => doomed.zeros([2])), DeviceLostError, 'engine.zeros');
    const backward = rejection(pending.backward(grad));
    const loss = rejection(mse(Qd));
    expectTyped(await backward, DeviceLostError, 'backward');
    expectTyped(await loss, DeviceLostError, 'mse');
  });

  it('an engine made from an application device is unusable after destroy(), though the device lives on', async () => {
    const device = other.device;
    const joined = Engine.fromDevice(device);
    const buffer = device.createBuffer({ size: 64, usage: ALL });
    joined.destroy();
    expectTyped(thrown(() => joined.wrap(buffer, [D])), DeviceLostError, 'engine.wrap');
    // The application's device was left alone.
    expect(other.wrap(buffer, [D]).shape).toEqual([D]);
    buffer.destroy();
  });
});
