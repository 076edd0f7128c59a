// weightNorm and spectralNorm wrappers: the effective weight and the gradients of (v, g) on the
// GPU against the float64 reference (src/reference/weight-norm.ts), whose gradients are checked
// by central finite differences; σ against the largest singular value; the power iteration
// against the reference's steps; no readback in update/backward; validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DisposedError,
  OptionError,
  ShapeError,
  Qd,
  add,
  conv2d,
  implicitBlock,
  jfb,
  linear,
  sequential,
  spectralNorm,
  tanh,
  weightNorm,
  type Engine,
  type Tensor,
} from '../src';
import {
  refFiniteDifferences,
  refLargestSingularValue,
  refPowerIteration,
  refSpectralNorm,
  refSpectralNormVjp,
  refWeightNorm,
  refWeightNormVjp,
  type RefMatrix,
  type RefNormGradients,
} from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, relError, rng } from './helpers/engine';
import { expectTyped, rejection, thrown } from './helpers/errors';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const f64 = (t: Tensor): Promise<Float64Array> => t.read().then((x) => Float64Array.from(x));
const write = (t: Tensor, values: ArrayLike<number>): void => engine.device.queue.writeBuffer(t.buffer, 0, Float32Array.from(values));
/** ⟨a, b⟩. */
const inner = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, x, i) => s + x * b[i], 0);

/** The wrapper's backward of `dW` (no readback) against the reference's ∂v and ∂g; frees what it made. */
async function expectGradients(wrapper: { backward(dW: Tensor): Promise<{ v: Tensor; g?: Tensor }>; weight: Tensor }, dW: Tensor, reference: (dW: Float64Array) => RefNormGradients): Promise<void> {
  const before = engine.counters.readbacks;
  const grads = await wrapper.backward(dW);
  expect(engine.counters.readbacks).toBe(before);
  const expected = reference(await f64(dW));
  expect(grads.v.shape).toEqual(wrapper.weight.shape);
  expect(relError(await grads.v.read(), expected.dv)).toBeLessThan(1e-5);
  expect(relError(await (grads.g as Tensor).read(), expected.dg)).toBeLessThan(1e-5);
  for (const t of [dW, grads.v, grads.g as Tensor]) t.dispose();
}

describe('the float64 reference', () => {
  const random = rng(3);
  const v: RefMatrix = { rows: 4, cols: 3, values: randomArray(random, 12) };
  const g = randomArray(random, 3);
  const dW = randomArray(random, 12);

  it('weight norm: unit columns times g, and its VJP matches finite differences', () => {
    const w = refWeightNorm(v, g);
    for (let c = 0; c < 3; c++) expect(Math.hypot(w[c], w[3 + c], w[6 + c], w[9 + c])).toBeCloseTo(Math.abs(g[c]), 12);
    const { dv, dg } = refWeightNormVjp(v, g, dW);
    expect(maxAbsDiff(dv, refFiniteDifferences((x) => inner(dW, refWeightNorm({ ...v, values: x }, g)), v.values))).toBeLessThan(1e-8);
    expect(maxAbsDiff(dg, refFiniteDifferences((x) => inner(dW, refWeightNorm(v, x)), g))).toBeLessThan(1e-8);
  });

  it('spectral norm: its VJP (power vectors constant) matches finite differences', () => {
    const { left, right } = refPowerIteration(v, randomArray(random, 3), 5);
    const { dv, dg } = refSpectralNormVjp(v, g, left, right, dW);
    expect(maxAbsDiff(dv, refFiniteDifferences((x) => inner(dW, refSpectralNorm({ ...v, values: x }, g, left, right)), v.values))).toBeLessThan(1e-7);
    expect(maxAbsDiff(dg, refFiniteDifferences((x) => inner(dW, refSpectralNorm(v, x, left, right)), g))).toBeLessThan(1e-7);
  });

  it('the largest singular value of a known matrix, and the power iteration converging to it', () => {
    // diag(3, −5) padded with a zero row: singular values 5 and 3.
    const m: RefMatrix = { rows: 3, cols: 2, values: Float64Array.from([3, 0, 0, -5, 0, 0]) };
    expect(refLargestSingularValue(m)).toBeCloseTo(5, 6);
    expect(refPowerIteration(m, [1, 1], 60).sigma).toBeCloseTo(5, 6);
  });
});

describe('weightNorm', () => {
  it('on a linear layer: unchanged weight at first; then weight and gradients of random (v, g) match the reference', async () => {
    const random = rng(11);
    const [rows, cols] = [6, 5];
    const w0 = Float32Array.from(randomArray(random, rows * cols));
    const layer = linear(engine, { weight: w0, bias: new Float32Array(cols) });
    const wn = await weightNorm(layer);
    expect(maxAbsDiff(await layer.params.weight.read(), w0)).toBeLessThan(1e-6);
    expect(maxAbsDiff(await wn.params.v.read(), w0)).toBe(0);
    const v: RefMatrix = { rows, cols, values: Float64Array.from(Float32Array.from(randomArray(random, rows * cols))) };
    const g = Float64Array.from(Float32Array.from(randomArray(random, cols, 2)));
    write(wn.params.v, v.values);
    write(wn.params.g, g);
    const dW = engine.tensor(Float32Array.from(randomArray(random, rows * cols)), [rows, cols]);
    const before = engine.counters.readbacks;
    await wn.update();
    expect(engine.counters.readbacks).toBe(before);
    expect(maxAbsDiff(await layer.params.weight.read(), refWeightNorm(v, g))).toBeLessThan(1e-5);
    await expectGradients(wn, dW, (x) => refWeightNormVjp(v, g, x));
    wn.dispose();
    layer.dispose();
  });

  it('on a conv2d layer: per output channel over its 3·3·inChannels taps', async () => {
    const random = rng(12);
    const [inC, outC] = [2, 3];
    const layer = conv2d(engine, { height: 3, width: 3, weight: Float32Array.from(randomArray(random, 9 * inC * outC)), bias: new Float32Array(outC) });
    const wn = await weightNorm(layer);
    const v: RefMatrix = { rows: 9 * inC, cols: outC, values: Float64Array.from(Float32Array.from(randomArray(random, 9 * inC * outC))) };
    const g = Float64Array.from(Float32Array.from(randomArray(random, outC, 2)));
    write(wn.params.v, v.values);
    write(wn.params.g, g);
    await wn.update();
    expect(maxAbsDiff(await layer.params.weight.read(), refWeightNorm(v, g))).toBeLessThan(1e-5);
    const dW = engine.tensor(Float32Array.from(randomArray(random, 9 * inC * outC)), [3, 3, inC, outC]);
    await expectGradients(wn, dW, (x) => refWeightNormVjp(v, g, x));
    wn.dispose();
    layer.dispose();
  });
});

describe('spectralNorm', () => {
  it('σ converges to the largest singular value, and the weight is v / σ (linear)', async () => {
    const random = rng(21);
    const [rows, cols] = [7, 5];
    const w0 = Float32Array.from(randomArray(random, rows * cols));
    const layer = linear(engine, { weight: w0, bias: new Float32Array(cols) });
    const sn = await spectralNorm(layer, { initialIterations: 300 });
    const v: RefMatrix = { rows, cols, values: Float64Array.from(w0) };
    const sigma = (await sn.state.sigma.read())[0];
    expect(Math.abs(sigma - refLargestSingularValue(v)) / refLargestSingularValue(v)).toBeLessThan(1e-4);
    const w = await layer.params.weight.read();
    expect(maxAbsDiff(w, refSpectralNorm(v, new Float64Array(cols).fill(1), await f64(sn.state.left), await f64(sn.state.right)))).toBeLessThan(1e-5);
    // The normalised weight's own largest singular value is 1.
    expect(refLargestSingularValue({ rows, cols, values: Float64Array.from(w) })).toBeCloseTo(1, 4);
    sn.dispose();
    layer.dispose();
  });

  it('each training update runs `iterations` power steps like the reference; inference updates leave the vectors alone', async () => {
    const random = rng(22);
    const [rows, cols] = [4, 6];
    const layer = linear(engine, { weight: Float32Array.from(randomArray(random, rows * cols)), bias: new Float32Array(cols) });
    const sn = await spectralNorm(layer, { initialIterations: 0, iterations: 3, seed: 5 });
    const start = await f64(sn.state.right);
    expect(Math.max(...start.map(Math.abs))).toBeGreaterThan(0);
    const v: RefMatrix = { rows, cols, values: Float64Array.from(Float32Array.from(randomArray(random, rows * cols))) };
    write(sn.params.v, v.values);
    const before = engine.counters.readbacks;
    await sn.update();
    expect(engine.counters.readbacks).toBe(before);
    const expected = refPowerIteration(v, start, 3);
    const [left, right] = [await f64(sn.state.left), await f64(sn.state.right)];
    expect(maxAbsDiff(left, expected.left)).toBeLessThan(1e-5);
    expect(maxAbsDiff(right, expected.right)).toBeLessThan(1e-5);
    expect(Math.abs((await sn.state.sigma.read())[0] - expected.sigma)).toBeLessThan(1e-5 * expected.sigma);
    // Inference: v changed, the vectors stay, σ = leftᵀ·v·right of the new v, weight recomputed.
    const v2: RefMatrix = { rows, cols, values: Float64Array.from(Float32Array.from(randomArray(random, rows * cols))) };
    write(sn.params.v, v2.values);
    await sn.update({ inference: true });
    expect(await f64(sn.state.left)).toEqual(left);
    expect(await f64(sn.state.right)).toEqual(right);
    expect(maxAbsDiff(await layer.params.weight.read(), refSpectralNorm(v2, new Float64Array(cols).fill(1), left, right))).toBeLessThan(1e-5);
    sn.dispose();
    layer.dispose();
  });

  it('gradients of v and of a learned scale g match the reference on conv2d (vectors held constant)', async () => {
    const random = rng(23);
    const [inC, outC] = [2, 4];
    const n = 9 * inC * outC;
    const layer = conv2d(engine, { height: 4, width: 4, weight: Float32Array.from(randomArray(random, n)), bias: new Float32Array(outC) });
    const sn = await spectralNorm(layer, { learnScale: true, targetNorm: 0.8, initialIterations: 200 });
    const v: RefMatrix = { rows: 9 * inC, cols: outC, values: Float64Array.from(await sn.params.v.read()) };
    expect(await (sn.params.g as Tensor).read()).toEqual(new Float32Array(outC).fill(0.8));
    const sigma = (await sn.state.sigma.read())[0];
    expect(Math.abs(sigma - refLargestSingularValue(v)) / sigma).toBeLessThan(1e-4);
    const g = Float64Array.from(Float32Array.from(randomArray(random, outC, 1.5)));
    write(sn.params.g as Tensor, g);
    await sn.update({ inference: true });
    const [left, right] = [await f64(sn.state.left), await f64(sn.state.right)];
    expect(maxAbsDiff(await layer.params.weight.read(), refSpectralNorm(v, g, left, right))).toBeLessThan(1e-5);
    const dW = engine.tensor(Float32Array.from(randomArray(random, n)), [3, 3, inC, outC]);
    await expectGradients(sn, dW, (x) => refSpectralNormVjp(v, g, left, right, x));
    sn.dispose();
    layer.dispose();
  });

  it("normalises the tanh block's weight (and a sequential's named weight) for a solve and its backward", async () => {
    const random = rng(24);
    const d = 8;
    const w = Float32Array.from(randomArray(random, d * d, 1.5));
    const block = implicitBlock(engine, { weight: w, bias: Float32Array.from(randomArray(random, d, 0.1)) });
    const sn = await spectralNorm(block, { targetNorm: 0.9, initialIterations: 100 });
    const normalised = { rows: d, cols: d, values: Float64Array.from(await block.params.weight.read()) };
    expect(refLargestSingularValue(normalised)).toBeCloseTo(0.9, 3);
    const qd = engine.tensor(Float32Array.from(randomArray(random, 2 * d)), [2, d]);
    const out = await jfb(block, qd, { maxDepth: 20 });
    const grads = await out.backward(engine.tensor(Float32Array.from(randomArray(random, 2 * d)), [2, d]));
    const gv = await sn.backward(grads.weight);
    const expected = refSpectralNormVjp({ rows: d, cols: d, values: Float64Array.from(w) }, new Float64Array(d).fill(0.9), await f64(sn.state.left), await f64(sn.state.right), await f64(grads.weight));
    expect(relError(await gv.v.read(), expected.dv)).toBeLessThan(1e-4);
    out.dispose();
    sn.dispose();
    block.dispose();
    qd.dispose();

    const stack = sequential(linear(engine, { weight: w, bias: new Float32Array(d) }), add(Qd), tanh());
    const named = await spectralNorm(stack, { param: '0.weight' });
    expect(refLargestSingularValue({ rows: d, cols: d, values: Float64Array.from(await stack.params['0.weight'].read()) })).toBeCloseTo(1, 2);
    named.dispose();
    stack.dispose();
  });
});

describe('validation', () => {
  it('wrong layers, unknown or out-of-range options, a second wrapper, bad gradients, use after dispose', async () => {
    const layer = linear(engine, { weight: Float32Array.from(randomArray(rng(31), 12)), bias: new Float32Array(4) });
    expectTyped(await rejection(weightNorm({} as never)), OptionError, 'layer');
    expectTyped(await rejection(spectralNorm(layer, { iterations: 0 })), OptionError, 'options.iterations');
    expectTyped(await rejection(spectralNorm(layer, { targetNorm: -1 })), OptionError, 'options.targetNorm');
    const typo = await rejection(spectralNorm(layer, { learnscale: true } as never));
    expectTyped(typo, OptionError, 'options.learnscale');
    expect((typo as Error).message).toContain("did you mean 'learnScale'");
    expectTyped(await rejection(weightNorm(layer, { param: 'bias' })), OptionError, 'options.param');
    const stack = sequential(linear(engine, { weight: new Float32Array(16).fill(0.1), bias: new Float32Array(4) }), tanh());
    expectTyped(await rejection(weightNorm(stack, { param: '0.bias' })), OptionError, 'options.param');
    stack.dispose();

    const sn = await spectralNorm(layer);
    expectTyped(await rejection(weightNorm(layer)), OptionError, 'layer');
    expectTyped(await rejection(sn.update({ inference: 1 } as never)), OptionError, 'options.inference');
    const wrong = engine.zeros([4, 3]);
    expectTyped(await rejection(sn.backward(wrong)), ShapeError, 'gradWeight');
    const dW = engine.zeros([3, 4]);
    const dv = engine.zeros([3, 4]);
    const pass = engine.device.createCommandEncoder().beginComputePass();
    expectTyped(thrown(() => sn.encodeBackward(pass, dW, { v: dv, g: engine.zeros([4]) })), OptionError, 'grads.g');
    expectTyped(thrown(() => sn.encodeBackward(pass, dW, { v: dW })), ShapeError, 'grads.v');
    pass.end();
    sn.dispose();
    expectTyped(await rejection(sn.update()), DisposedError, 'spectralNorm');
    // Disposing frees the weight for another wrapper.
    const wn = await weightNorm(layer);
    wn.dispose();
    layer.dispose();
    expectTyped(await rejection(weightNorm(layer)), DisposedError, 'layer');
    for (const t of [wrong, dW, dv]) t.dispose();
  });
});
