// Bounded and freeable memory: the engine's caches (uniform buffers, kernels, bind groups, the
// buffer pool) stay bounded and are counted in engine.memory; every object that owns GPU memory
// has dispose(), after which using it is a DisposedError; factories that fail leak nothing. The
// soak runs thousands of small solves (eps and batch changing every solve, all three solvers) with
// layers and optimizers created and disposed in a loop, and asserts that memory stays flat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnchoraxError,
  DisposedError,
  NonFiniteError,
  ShapeError,
  anderson,
  broyden,
  conv2d,
  jfb,
  layerNorm,
  linear,
  picard,
  relu,
  sequential,
  add,
  Qd as QdStage,
  type Engine,
  type EngineMemory,
  type ImplicitLayer,
  type SolveResult,
  type SolverOptions,
  type Tensor,
  adam,
  gradientAccumulator,
  implicitBlock,
  sgd,
} from '../src';
import { KERNEL_CACHE_SIZE, UNIFORM_CACHE_SIZE } from '../src/engine';
import { MIN_FREE_BUFFERS, MIN_FREE_BYTES } from '../src/gpu/pool';
import { MAX_CACHED_GROUPS } from '../src/gpu/kernel';
import { SHADERS } from '../src/gpu/shaders';
import { uploadAll } from '../src/layers/params';
import { refBlockForward } from '../src/reference';
import { expectTyped, rejection, thrown } from './helpers/errors';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';

type Solver = (f: ImplicitLayer, Qd: Tensor, options?: SolverOptions) => Promise<SolveResult>;

const D = 8;

let engine: Engine;
const gpuErrors: string[] = [];

beforeAll(async () => {
  engine = await createTestEngine();
  // A submit that uses a destroyed buffer is a validation error (and its work is skipped).
  engine.device.addEventListener('uncapturederror', (event) => {
    gpuErrors.push((event as GPUUncapturedErrorEvent).error.message);
  });
});

afterAll(() => engine?.destroy());

/** Bytes held by live objects (tensors, layers, solves): allocated minus what the pool keeps free. */
function inUse(): number {
  const m = engine.memory;
  return m.allocatedBytes - m.pooledBytes;
}

/** Waits for the end of the current task: buffers dropped from a cache are destroyed then. */
function settle(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until the GPU is idle and the readbacks a solve submitted ahead (overlap) have given their
 * staging buffers back, so that inUse() counts only live objects.
 */
async function quiet(): Promise<void> {
  await engine.device.queue.onSubmittedWorkDone();
  await settle(20);
  await settle(20);
}

/** Fixed-point residual max |tanh(u w + Qd + b) − u| of the tanh block, on the CPU. */
function residual(w: Float64Array, b: Float64Array, qd: Float64Array, u: Float32Array): number {
  const fu = refBlockForward({ d: D, w, b }, Float64Array.from(u), qd);
  return maxAbsDiff(fu, Float64Array.from(u));
}

describe('engine.memory', () => {
  it('counts every cache, each within its documented bound', async () => {
    const m: EngineMemory = engine.memory;
    for (const key of ['allocatedBytes', 'peakBytes', 'pooledBytes', 'pooledBuffers', 'uniformBuffers', 'uniformBytes', 'kernels', 'bindGroups'] as const) {
      expect(Number.isInteger(m[key]) && m[key] >= 0).toBe(true);
    }
    const f = implicitBlock(engine, { weight: new Float32Array(D * D).fill(0.05), bias: new Float32Array(D) });
    const qd = engine.tensor(new Float32Array(D).fill(0.5), [D]);
    const out = await picard(f, qd, { eps: 1e-4 });
    const after = engine.memory;
    expect(after.uniformBuffers).toBeGreaterThan(0);
    expect(after.uniformBytes).toBeGreaterThanOrEqual(16 * after.uniformBuffers);
    expect(after.kernels).toBeGreaterThan(0);
    expect(after.bindGroups).toBeGreaterThan(0);
    expect(after.uniformBuffers).toBeLessThanOrEqual(UNIFORM_CACHE_SIZE);
    expect(after.kernels).toBeLessThanOrEqual(KERNEL_CACHE_SIZE);
    expect(after.bindGroups).toBeLessThanOrEqual(after.kernels * MAX_CACHED_GROUPS);
    out.dispose();
    qd.dispose();
    f.dispose();
  });

  it('the pool keeps a bounded number of free buffers when every tensor has a new size', async () => {
    const baseline = engine.memory.allocatedBytes;
    for (let i = 1; i <= MIN_FREE_BUFFERS + 200; i++) engine.zeros([i * 4]).dispose();
    await settle();
    const m = engine.memory;
    expect(m.pooledBuffers).toBeLessThanOrEqual(MIN_FREE_BUFFERS);
    expect(m.pooledBytes).toBeLessThanOrEqual(MIN_FREE_BYTES);
    // Without the bound every size would stay: Σ 16·i bytes over 456 sizes ≈ 1.7 MB.
    expect(m.allocatedBytes - baseline).toBeLessThan(16 * (MIN_FREE_BUFFERS + 200) * (MIN_FREE_BUFFERS + 201) / 2);
    // A freed size is found again (the pool still reuses).
    const t = engine.zeros([(MIN_FREE_BUFFERS + 200) * 4]);
    expect(engine.memory.allocatedBytes).toBe(m.allocatedBytes);
    t.dispose();
  });

  it('a uniform evicted while its encoding is still open is destroyed only after the submit (no validation error, the work runs)', async () => {
    const kernel = await engine.kernel('nonFinite', SHADERS.nonFinite);
    const values = new Float32Array(64).fill(1);
    values[63] = Number.NaN;
    const own = engine.device.createBuffer({ size: 256, usage: 0x80 | 0x4 | 0x8 });
    engine.device.queue.writeBuffer(own, 0, values);
    const flag = engine.zeros([4]);
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    // Bound first, then pushed out of the cache by more distinct values than it holds.
    const params = engine.params(kernel, { n: 64 });
    kernel.dispatch(pass, kernel.bind({ params, x: own, flag: flag.buffer }), 1);
    for (let n = 1; n <= UNIFORM_CACHE_SIZE + 8; n++) engine.params(kernel, { n: 1000 + n });
    expect(engine.memory.uniformBuffers).toBe(UNIFORM_CACHE_SIZE);
    pass.end();
    engine.device.queue.submit([encoder.finish()]);
    expect(new Uint32Array((await flag.read()).buffer)[0]).not.toBe(0);
    await settle();
    expect(gpuErrors).toEqual([]);
    // The next request for those values gets a new buffer (and a new bind group) that works.
    const again = engine.params(kernel, { n: 64 });
    expect(again).not.toBe(params);
    own.destroy();
    flag.dispose();
  });

  it('bind groups: at most MAX_CACHED_GROUPS per kernel, the least recently looked up dropped first', async () => {
    const kernel = await engine.kernel('nonFinite', SHADERS.nonFinite);
    const params = engine.params(kernel, { n: 64 });
    const total = MAX_CACHED_GROUPS + 40;
    const data = engine.device.createBuffer({ size: 256 * (total + 1), usage: 0x80 | 0x8 });
    const flag = engine.zeros([4]);
    const at = (i: number) => ({ params, x: { buffer: data, offset: 256 * i, size: 256 }, flag: flag.buffer });
    const kept = kernel.bind(at(0));
    const dropped = kernel.bind(at(1));
    for (let i = 2; i < MAX_CACHED_GROUPS; i++) kernel.bind(at(i));
    expect(kernel.cachedGroups).toBe(MAX_CACHED_GROUPS);
    // Looked up again (past the last few bindings, which are checked first): now the most recent.
    expect(kernel.bind(at(0))).toBe(kept);
    for (let i = MAX_CACHED_GROUPS; i < total; i++) kernel.bind(at(i));
    expect(kernel.cachedGroups).toBe(MAX_CACHED_GROUPS);
    for (let i = MAX_CACHED_GROUPS; i < total - 8; i++) kernel.bind(at(i));
    expect(kernel.bind(at(0))).toBe(kept);
    // The group of offset 1 was the least recently used when the cache overflowed: a new one.
    expect(kernel.bind(at(1))).not.toBe(dropped);
    data.destroy();
    flag.dispose();
  });

  it("solves keep the uniforms of the bind groups they reuse across chunks while other work floods the cache", async () => {
    const random = rng(5);
    const w = Float64Array.from(Float32Array.from(randomArray(random, D * D, 0.3)));
    const b = Float64Array.from(Float32Array.from(randomArray(random, D, 0.3)));
    const qdData = Float64Array.from(Float32Array.from(randomArray(random, 2 * D, 1)));
    const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qd = engine.tensor(qdData, [2, D]);
    const kernel = await engine.kernel('nonFinite', SHADERS.nonFinite);
    let flooding = true;
    const flood = async (): Promise<void> => {
      // More distinct values than the cache holds between any two chunks of the solves.
      for (let round = 0; flooding && round < 200; round++) {
        for (let j = 0; j < UNIFORM_CACHE_SIZE; j++) engine.params(kernel, { n: 10_000 + round * UNIFORM_CACHE_SIZE + j });
        await settle();
      }
    };
    // Broyden and the fused Picard kernel make their bind groups once, before the first chunk.
    const solves = Promise.all([
      broyden(f, qd, { eps: 0, maxDepth: 24, checkEvery: 1, overlap: false }),
      picard(f, qd, { eps: 0, maxDepth: 24, checkEvery: 1, overlap: false }),
      anderson(f, qd, { eps: 0, maxDepth: 24, checkEvery: 1, overlap: false }),
    ]).finally(() => {
      flooding = false;
    });
    const [results] = await Promise.all([solves, flood()]);
    await settle();
    expect(gpuErrors).toEqual([]);
    for (const out of results) {
      const u = await out.uStar.read();
      for (let row = 0; row < 2; row++) {
        const slice = (a: ArrayLike<number>) => Float64Array.from(Array.prototype.slice.call(a, row * D, (row + 1) * D) as number[]);
        expect(residual(w, b, slice(qdData), Float32Array.from(slice(u)))).toBeLessThan(1e-4);
      }
      out.dispose();
    }
    expect(engine.memory.uniformBuffers).toBe(UNIFORM_CACHE_SIZE);
    qd.dispose();
    f.dispose();
  });
});

describe('dispose()', () => {
  it('the tanh block frees the parameters it uploaded and its scratch; using it is a DisposedError', async () => {
    await quiet();
    const before = inUse();
    const f = implicitBlock(engine, { weight: new Float32Array(D * D).fill(0.05), bias: new Float32Array(D), forwardKernel: 'split-k' });
    const qd = engine.tensor(new Float32Array(3 * D).fill(0.5), [3, D]);
    (await broyden(f, qd)).dispose();
    expect(inUse()).toBeGreaterThan(before + 3 * D * 4);
    f.dispose();
    f.dispose();
    qd.dispose();
    await quiet();
    expect(f.disposed).toBe(true);
    expect(inUse()).toBe(before);
    expect(f.params.weight.disposed).toBe(true);
    const q = engine.zeros([D]);
    for (const solver of [picard, anderson, broyden] as Solver[]) {
      const err = await rejection(solver(f, q));
      expect(err).toBeInstanceOf(DisposedError);
    }
    q.dispose();
  });

  it("the tanh block leaves tensors it was given to their owner", async () => {
    const w = engine.tensor(new Float32Array(D * D).fill(0.05), [D, D]);
    const b = engine.zeros([D]);
    const f = implicitBlock(engine, { weight: w, bias: b });
    const qd = engine.zeros([D]);
    (await picard(f, qd)).dispose();
    f.dispose();
    expect(w.disposed || b.disposed).toBe(false);
    expect((await w.read())[0]).toBeCloseTo(0.05, 6);
    expectTyped(await rejection(picard(f, qd)), DisposedError, 'f');
    expectTyped(thrown(() => f.fusedPicard(1)), DisposedError, 'f');
    // A new block over the same tensors works.
    const g = implicitBlock(engine, { weight: w, bias: b });
    (await picard(g, qd)).dispose();
    g.dispose();
    for (const t of [w, b, qd]) t.dispose();
  });

  it('sequential frees its scratch and its stages (uploaded parameters, norm statistics); then DisposedError', async () => {
    await quiet();
    const before = inUse();
    const random = rng(9);
    const f = sequential(
      linear(engine, { weight: Float32Array.from(randomArray(random, D * D, 0.2)), bias: new Float32Array(D) }),
      relu(),
      add(QdStage),
      layerNorm(engine, { gamma: new Float32Array(D).fill(1), beta: new Float32Array(D) }),
    );
    const qd = engine.tensor(Float32Array.from(randomArray(random, 2 * D, 1)), [2, D]);
    const out = await jfb(f, qd, { solver: anderson, eps: 1e-4 });
    const gradUStar = engine.zeros([2, D]);
    for (const t of Object.values(await out.backward(gradUStar))) t.dispose();
    out.dispose();
    f.dispose();
    qd.dispose();
    await quiet();
    // What is left: the [2, D] zeros passed as gradUStar.
    expect(inUse()).toBe(before + 2 * D * 4);
    expect(f.disposed).toBe(true);
    for (const stage of f.stages) expect(Object.values(stage.params).every((t) => t.disposed)).toBe(true);
    expectTyped(await rejection(anderson(f, gradUStar)), DisposedError, 'f.params.0.weight');
    gradUStar.dispose();
  });

  it('a disposed stage cannot be used again: sequential, linear.forward and conv2d say DisposedError', async () => {
    const lin = linear(engine, { weight: new Float32Array(D * D), bias: new Float32Array(D) });
    lin.dispose();
    expect(lin.disposed).toBe(true);
    const input = engine.zeros([1, D]);
    expect(await rejection(lin.forward(input))).toBeInstanceOf(DisposedError);
    input.dispose();
    expect(thrown(() => sequential(lin, relu()))).toBeInstanceOf(DisposedError);
    const conv = conv2d(engine, { height: 2, width: 2, weight: new Float32Array(9 * 2 * 2), bias: new Float32Array(2) });
    conv.dispose();
    expect(thrown(() => sequential(conv, relu()))).toBeInstanceOf(DisposedError);
    // Stages given tensors leave them alone.
    const W = engine.zeros([D, D]);
    const b = engine.zeros([D]);
    const kept = linear(engine, { weight: W, bias: b });
    kept.dispose();
    expect(W.disposed || b.disposed).toBe(false);
    W.dispose();
    b.dispose();
  });

  it('optimizers, the accumulator and results: DisposedError after dispose(), their memory back', async () => {
    await quiet();
    const before = inUse();
    const p = engine.zeros([D]);
    const grad = engine.tensor(new Float32Array(D).fill(1), [D]);
    const opt = adam(engine, [p]);
    await opt.step([grad]);
    opt.dispose();
    expectTyped(await rejection(opt.step([grad])), DisposedError, 'optimizer');
    const acc = gradientAccumulator(engine, [p]);
    await acc.add([grad], 0.5);
    acc.dispose();
    expectTyped(await rejection(acc.add([grad])), DisposedError, 'accumulator');
    p.dispose();
    grad.dispose();
    await quiet();
    expect(inUse()).toBe(before);
  });
});

describe('factories that fail free what they uploaded', () => {
  it('uploadAll frees the uploads before the one that throws', () => {
    const before = inUse();
    const err = thrown(() => uploadAll(engine, [[new Float32Array(D * D), [D, D]], [[1, Number.NaN], [2]]]));
    expectTyped(err, NonFiniteError, 'data');
    expect(inUse()).toBe(before);
    const err2 = thrown(() => uploadAll(engine, [[new Float32Array(4), [4]], [new Float32Array(3), [4]]]));
    expectTyped(err2, ShapeError, 'data');
    expect(inUse()).toBe(before);
  });

  it.each([
    ['implicitBlock', () => implicitBlock(engine, { weight: new Float32Array(D * D), bias: new Float32Array(D + 1) })],
    ['linear', () => linear(engine, { weight: new Float32Array(D * D), bias: [Number.NaN] })],
    ['layerNorm', () => layerNorm(engine, { gamma: new Float32Array(D), beta: new Float32Array(D - 1) })],
    ['conv2d', () => conv2d(engine, { height: 2, width: 2, weight: new Float32Array(18), bias: [1, Infinity] })],
  ])('%s rejected after its first parameter passed leaves nothing allocated', (_name, make) => {
    const before = inUse();
    expect(thrown(make)).toBeInstanceOf(AnchoraxError);
    expect(inUse()).toBe(before);
  });
});

describe('soak', () => {
  it('480 solves (eps and batch changing every solve, all three solvers) with layers and optimizers created and disposed: memory stays flat', async () => {
    const random = rng(21);
    const w = Float64Array.from(Float32Array.from(randomArray(random, D * D, 0.25)));
    const b = Float64Array.from(Float32Array.from(randomArray(random, D, 0.2)));
    const f = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
    const qds = [1, 2, 3, 4].map((batch) => {
      const data = Float64Array.from(Float32Array.from(randomArray(random, batch * D, 1)));
      return { data, tensor: engine.tensor(data, [batch, D]) };
    });
    const solvers: Solver[] = [picard, anderson, broyden];
    const snapshots: EngineMemory[] = [];
    const SOLVES = 480;
    for (let i = 0; i < SOLVES; i++) {
      const qd = qds[i % 4];
      // A new eps every solve: about two new uniform buffers each (the finish kernel's), so the
      // cache is full after ~250 solves and must then drop as many as it makes.
      const out = await solvers[i % 3](f, qd.tensor, { eps: 1e-4 * (1 + i / SOLVES), maxDepth: 30, checkEvery: 30 });
      if (i % 100 === 0) {
        expect(out.stats.converged).toBe(true);
        expect(residual(w, b, qd.data, await out.uStar.read())).toBeLessThan(1e-3);
      }
      out.dispose();
      if (i % 20 === 0) {
        // A layer, an optimizer and an accumulator (a new scale each time) that live for one step.
        const layer = implicitBlock(engine, { weight: Float32Array.from(w), bias: Float32Array.from(b) });
        const result = await jfb(layer, qd.tensor, { solver: broyden, eps: 1e-4, maxDepth: 30, checkEvery: 30 });
        const grads = await result.backward(qd.tensor);
        const params = [layer.params.weight, layer.params.bias];
        const opt = i % 40 === 0 ? adam(engine, params) : sgd(engine, params, { lr: 0.01, momentum: 0.9 });
        const acc = gradientAccumulator(engine, params);
        await acc.add([grads.weight, grads.bias], 1 / (1 + i));
        await opt.step(acc.grads);
        for (const t of Object.values(grads)) t.dispose();
        result.dispose();
        acc.dispose();
        opt.dispose();
        layer.dispose();
      }
      // The loop repeats every 120 solves (3 solvers × 4 batches, the 40-solve optimizer cycle):
      // snapshots at the same phase of it, where the caches must hold the same things.
      if (i % 120 === 119) {
        await quiet();
        snapshots.push(engine.memory);
      }
    }
    expect(gpuErrors).toEqual([]);
    // Warm-up: the first ~260 solves fill the uniform cache; from then on nothing changes at all at one
    // phase (the pool hands buffers out in a fixed order, so the bind groups found are the same ones):
    // the snapshots after 360 and 480 solves.
    expect(snapshots).toHaveLength(4);
    const steady = snapshots.slice(2);
    expect(steady[0].uniformBuffers).toBe(UNIFORM_CACHE_SIZE);
    expect(steady[0].bindGroups).toBeLessThanOrEqual(steady[0].kernels * MAX_CACHED_GROUPS);
    for (const s of steady) expect(s).toEqual(steady[0]);
    for (const qd of qds) qd.tensor.dispose();
    f.dispose();
  }, 600_000);
});
