// GPU optimizers and gradient accumulation against the float64 oracle (src/reference/optim.ts):
// Adam/AdamW and SGD step by step with fresh random gradients each step, several steps in one
// submit (the step count lives on the GPU), learning-rate changes, no readbacks or allocations
// per step, accumulation over micro-batches, and the typed errors of bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnchoraxError,
  DisposedError,
  Engine,
  EngineMismatchError,
  OptionError,
  ShapeError,
  type Optimizer,
  type Tensor,
  adam,
  gradientAccumulator,
  sgd,
} from '../src';
import { RefAdam, RefSgd, type RefAdamOptions } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';

/** Parameter shapes: a matrix, a vector, and one longer than a 256-thread workgroup. */
const SHAPES: number[][] = [[3, 5], [7], [300]];
const SIZES = SHAPES.map((s) => s.reduce((a, b) => a * b, 1));
/**
 * Float32 tolerance on parameters of magnitude ≤ 1 after a few steps of size ≤ lr. A wrong
 * formula (no bias correction, coupled decay, missing momentum) is off by ≥ 1e-4.
 */
const TOL = 2e-6;

let engine: Engine;

beforeAll(async () => {
  engine = await createTestEngine();
});

afterAll(() => {
  engine?.destroy();
});

/** Random float32-representable arrays, one per shape. */
function randomSet(random: () => number, scale = 1): Float32Array[] {
  return SIZES.map((n) => Float32Array.from(randomArray(random, n, scale)));
}

function upload(arrays: readonly Float32Array[]): Tensor[] {
  return arrays.map((a, i) => engine.tensor(a, SHAPES[i]));
}

async function readAll(tensors: readonly Tensor[]): Promise<Float32Array[]> {
  return Promise.all(tensors.map((t) => t.read()));
}

/** Largest |gpu − ref| over all tensors. */
function maxError(gpu: readonly Float32Array[], ref: readonly Float64Array[]): number {
  return Math.max(...gpu.map((g, i) => maxAbsDiff(g, ref[i])));
}

function disposeAll(...lists: (readonly Tensor[])[]): void {
  for (const list of lists) for (const t of list) t.dispose();
}

/** Runs `steps` GPU steps against `refStep`, comparing every parameter after every step. */
async function compareStepByStep(
  seed: number,
  steps: number,
  make: (params: Tensor[]) => Optimizer,
  refStep: (params: Float64Array[], grads: readonly Float32Array[]) => void,
): Promise<void> {
  const random = rng(seed);
  const init = randomSet(random);
  const params = upload(init);
  const ref = init.map((a) => Float64Array.from(a));
  const opt = make(params);
  for (let k = 0; k < steps; k++) {
    const gradArrays = randomSet(random, 2);
    const grads = upload(gradArrays);
    await opt.step(grads);
    refStep(ref, gradArrays);
    const gpu = await readAll(params);
    expect(maxError(gpu, ref), `step ${k + 1}`).toBeLessThan(TOL);
    // The parameters really moved (a no-op kernel would otherwise pass with tiny steps).
    expect(maxError(gpu, init.map((a) => Float64Array.from(a))), `step ${k + 1} moved`).toBeGreaterThan(1e-3);
    disposeAll(grads);
  }
  expect(opt.stepCount).toBe(steps);
  opt.dispose();
  disposeAll(params);
}

describe('Adam', () => {
  it('matches the float64 reference step by step (plain Adam, default betas)', async () => {
    const options: RefAdamOptions = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    const ref = new RefAdam(SIZES, options);
    await compareStepByStep(1, 6, (p) => adam(engine, p, { lr: 0.01 }), (p, g) => ref.step(p, g));
  });

  it('matches the float64 reference with decoupled weight decay and custom betas (AdamW)', async () => {
    const options: RefAdamOptions = { lr: 0.02, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 };
    const ref = new RefAdam(SIZES, options);
    await compareStepByStep(2, 6, (p) => adam(engine, p, options), (p, g) => ref.step(p, g));
  });

  it('advances the step count on the GPU: many steps encoded into one submit match the reference', async () => {
    const random = rng(3);
    const init = randomSet(random);
    const params = upload(init);
    const gradSets = [randomSet(random), randomSet(random), randomSet(random)];
    const grads = gradSets.map(upload);
    const options: RefAdamOptions = { lr: 0.005, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
    const opt = adam(engine, params, options);
    await opt.prepare();
    const steps = 40;
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let k = 0; k < steps; k++) opt.encodeStep(pass, grads[k % 3]);
    pass.end();
    engine.device.queue.submit([encoder.finish()]);

    const ref = init.map((a) => Float64Array.from(a));
    const refOpt = new RefAdam(SIZES, options);
    for (let k = 0; k < steps; k++) refOpt.step(ref, gradSets[k % 3]);
    expect(opt.stepCount).toBe(steps);
    // 40 steps accumulate more float32 rounding than 6.
    expect(maxError(await readAll(params), ref)).toBeLessThan(4 * TOL);
    opt.dispose();
    disposeAll(params, ...grads);
  });

  it('setLearningRate changes the rate of later steps', async () => {
    const options: RefAdamOptions = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    const ref = new RefAdam(SIZES, options);
    let optimizer: Optimizer | undefined;
    let k = 0;
    await compareStepByStep(
      4,
      6,
      (p) => (optimizer = adam(engine, p, { lr: 0.01 })),
      (p, g) => {
        ref.step(p, g);
        // After the third step, both sides switch to a larger rate before the next step.
        if (++k === 3) {
          ref.options = { ...options, lr: 0.05 };
          optimizer?.setLearningRate(0.05);
          expect(optimizer?.learningRate).toBe(0.05);
        }
      },
    );
  });

  it('steps without any readback and without allocating after the first step', async () => {
    const random = rng(5);
    const params = upload(randomSet(random));
    const grads = upload(randomSet(random));
    const opt = adam(engine, params);
    await opt.step(grads);
    const before = { readbacks: engine.readbackCount, bytes: engine.memory.allocatedBytes };
    for (let k = 0; k < 5; k++) await opt.step(grads);
    expect(engine.readbackCount).toBe(before.readbacks);
    expect(engine.memory.allocatedBytes).toBe(before.bytes);
    opt.dispose();
    disposeAll(params, grads);
  });
});

describe('SGD', () => {
  it('matches the float64 reference with momentum and weight decay', async () => {
    const ref = new RefSgd(SIZES, { lr: 0.05, momentum: 0.9, weightDecay: 0.05 });
    await compareStepByStep(6, 6, (p) => sgd(engine, p, { lr: 0.05, momentum: 0.9, weightDecay: 0.05 }), (p, g) => ref.step(p, g));
  });

  it('matches the float64 reference without momentum', async () => {
    const ref = new RefSgd(SIZES, { lr: 0.05, momentum: 0, weightDecay: 0.01 });
    await compareStepByStep(7, 5, (p) => sgd(engine, p, { lr: 0.05, weightDecay: 0.01 }), (p, g) => ref.step(p, g));
  });
});

describe('GradientAccumulator', () => {
  it('sums three gradient sets, gives their mean, scales, and zeroes', async () => {
    const random = rng(8);
    const sets = [randomSet(random), randomSet(random), randomSet(random)];
    const tensors = sets.map(upload);
    const acc = gradientAccumulator(engine, tensors[0]);
    for (const t of tensors) await acc.add(t);
    expect(acc.count).toBe(3);

    const sum = SIZES.map((n, i) => Float64Array.from({ length: n }, (_, j) => sets[0][i][j] + sets[1][i][j] + sets[2][i][j]));
    expect(maxError(await readAll(acc.grads), sum)).toBeLessThan(1e-6);
    const mean = sum.map((s) => s.map((x) => x / 3));
    expect(maxError(await readAll(await acc.mean()), mean)).toBeLessThan(1e-6);

    acc.zero();
    expect(acc.count).toBe(0);
    expect(maxError(await readAll(acc.grads), SIZES.map((n) => new Float64Array(n)))).toBe(0);

    await acc.add(tensors[1], 0.5);
    await acc.add(tensors[2], -2);
    const scaled = SIZES.map((n, i) => Float64Array.from({ length: n }, (_, j) => 0.5 * sets[1][i][j] - 2 * sets[2][i][j]));
    expect(maxError(await readAll(acc.grads), scaled)).toBeLessThan(1e-6);

    acc.dispose();
    disposeAll(...tensors);
  });

  it('composes zero, accumulation, mean and an SGD step into one submit', async () => {
    const random = rng(9);
    const init = randomSet(random);
    const params = upload(init);
    const sets = [randomSet(random), randomSet(random), randomSet(random)];
    const tensors = sets.map(upload);
    const acc = gradientAccumulator(engine, params);
    await acc.add(tensors[0]); // stale content that encodeZero must clear
    const opt = sgd(engine, params, { lr: 0.1, momentum: 0.5 });
    await opt.prepare();

    const encoder = engine.device.createCommandEncoder();
    acc.encodeZero(encoder);
    const pass = encoder.beginComputePass();
    for (const t of tensors) acc.encodeAdd(pass, t);
    opt.encodeStep(pass, acc.encodeMean(pass));
    pass.end();
    engine.device.queue.submit([encoder.finish()]);

    const ref = init.map((a) => Float64Array.from(a));
    const meanGrads = SIZES.map((n, i) => Float64Array.from({ length: n }, (_, j) => (sets[0][i][j] + sets[1][i][j] + sets[2][i][j]) / 3));
    new RefSgd(SIZES, { lr: 0.1, momentum: 0.5, weightDecay: 0 }).step(ref, meanGrads);
    expect(maxError(await readAll(params), ref)).toBeLessThan(TOL);

    opt.dispose();
    acc.dispose();
    disposeAll(params, ...tensors);
  });
});

describe('bad input', () => {
  /** The error `fn` throws (fails the test when it throws nothing). */
  function thrown(fn: () => unknown): unknown {
    try {
      fn();
    } catch (err) {
      return err;
    }
    throw new Error('expected an error, but none was thrown');
  }

  function expectError(err: unknown, type: new (argument: string, message: string) => AnchoraxError, argument: string): void {
    expect(err).toBeInstanceOf(type);
    expect((err as AnchoraxError).argument).toBe(argument);
  }

  it('rejects gradients that do not match the parameters', async () => {
    const random = rng(10);
    const params = upload(randomSet(random));
    const grads = upload(randomSet(random));
    const opt = adam(engine, params);
    await expect(opt.step(grads.slice(0, 2))).rejects.toSatisfy((e: unknown) => e instanceof ShapeError && e.argument === 'grads');
    const wrongShape = engine.tensor(new Float32Array(8), [8]);
    await expect(opt.step([grads[0], wrongShape, grads[2]])).rejects.toSatisfy(
      (e: unknown) => e instanceof ShapeError && e.argument === 'grads[1]',
    );
    // Same size, different shape.
    const transposed = engine.tensor(new Float32Array(15), [5, 3]);
    expectError(thrown(() => opt.encodeStep({} as GPUComputePassEncoder, [transposed, grads[1], grads[2]])), ShapeError, 'grads[0]');
    // A parameter's own buffer cannot be its gradient (one dispatch would bind it twice).
    await expect(opt.step([grads[0], params[1], grads[2]])).rejects.toSatisfy((e: unknown) => e instanceof ShapeError && e.argument === 'grads[1]');
    expect(opt.stepCount).toBe(0);
    opt.dispose();
    disposeAll(params, grads, [wrongShape, transposed]);
  });

  it('rejects out-of-range and unknown options, naming them', () => {
    const params = upload(randomSet(rng(11)));
    expectError(thrown(() => adam(engine, params, { lr: -1e-3 })), OptionError, 'options.lr');
    expectError(thrown(() => adam(engine, params, { lr: Number.NaN })), OptionError, 'options.lr');
    expectError(thrown(() => adam(engine, params, { beta1: 1 })), OptionError, 'options.beta1');
    expectError(thrown(() => adam(engine, params, { beta2: -0.1 })), OptionError, 'options.beta2');
    expectError(thrown(() => adam(engine, params, { eps: Infinity })), OptionError, 'options.eps');
    expectError(thrown(() => adam(engine, params, { weightDecay: -1 })), OptionError, 'options.weightDecay');
    expectError(thrown(() => adam(engine, params, { learningRate: 0.1 } as never)), OptionError, 'options.learningRate');
    expectError(thrown(() => sgd(engine, params, { momentum: 1.5 })), OptionError, 'options.momentum');
    expectError(thrown(() => sgd(engine, params, { lr: -0.1 })), OptionError, 'options.lr');
    expectError(thrown(() => sgd(engine, params, 3 as never)), OptionError, 'options');
    const opt = sgd(engine, params, { lr: 0.1 });
    expectError(thrown(() => opt.setLearningRate(-1)), OptionError, 'lr');
    expect(opt.learningRate).toBe(0.1);
    opt.dispose();
    disposeAll(params);
  });

  it('rejects bad parameter lists', () => {
    const params = upload(randomSet(rng(12)));
    expectError(thrown(() => adam(engine, [])), ShapeError, 'params');
    expectError(thrown(() => adam(engine, [params[0], params[0]])), ShapeError, 'params[1]');
    expectError(thrown(() => sgd(engine, [params[0], 'w' as never])), ShapeError, 'params[1]');
    expectError(thrown(() => gradientAccumulator(engine, [])), ShapeError, 'params');
    disposeAll(params);
  });

  it('rejects tensors of another engine', async () => {
    const other = await createTestEngine();
    try {
      const foreign = other.tensor(new Float32Array(7), [7]);
      const params = upload(randomSet(rng(13)));
      expectError(thrown(() => adam(engine, [params[0], foreign])), EngineMismatchError, 'params[1]');
      disposeAll(params);
    } finally {
      other.destroy();
    }
  });

  it('reports disposed tensors, optimizers and accumulators', async () => {
    const random = rng(14);
    const params = upload(randomSet(random));
    const grads = upload(randomSet(random));
    const opt = adam(engine, params);
    await opt.step(grads);

    grads[2].dispose();
    await expect(opt.step(grads)).rejects.toSatisfy((e: unknown) => e instanceof DisposedError && e.argument === 'grads[2]');
    const fresh = engine.tensor(new Float32Array(300), [300]);
    params[1].dispose();
    await expect(opt.step([grads[0], grads[1], fresh])).rejects.toSatisfy(
      (e: unknown) => e instanceof DisposedError && e.argument === 'params[1]',
    );
    expect(opt.stepCount).toBe(1);
    opt.dispose();
    opt.dispose();
    expect(opt.disposed).toBe(true);
    await expect(opt.step(grads)).rejects.toSatisfy((e: unknown) => e instanceof DisposedError && e.argument === 'optimizer');
    expectError(thrown(() => adam(engine, [params[0], params[1]])), DisposedError, 'params[1]');

    const acc = gradientAccumulator(engine, [params[0]]);
    expectError(thrown(() => acc.encodeMean({} as GPUComputePassEncoder)), AnchoraxError, 'accumulator');
    await expect(acc.add([grads[1]])).rejects.toSatisfy((e: unknown) => e instanceof ShapeError && e.argument === 'grads[0]');
    await expect(acc.add([grads[0]], Number.NaN)).rejects.toSatisfy((e: unknown) => e instanceof OptionError && e.argument === 'scale');
    acc.dispose();
    await expect(acc.add([grads[0]])).rejects.toSatisfy((e: unknown) => e instanceof DisposedError && e.argument === 'accumulator');
    disposeAll(params, grads, [fresh]);
  });

  it('refuses encodeStep before prepare() has resolved, leaving the pass untouched', () => {
    const random = rng(15);
    const params = upload(randomSet(random));
    const grads = upload(randomSet(random));
    const opt = sgd(engine, params, { momentum: 0.9 });
    const err = thrown(() => opt.encodeStep({} as GPUComputePassEncoder, grads));
    expectError(err, AnchoraxError, 'optimizer');
    expect(opt.stepCount).toBe(0);
    opt.dispose();
    disposeAll(params, grads);
  });
});
