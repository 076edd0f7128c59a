// `backward` when IFT's adjoint solve does not converge (onUnconverged: 'jfb' by default, 'throw',
// 'accept'), what the result says about it (backwardInfo, backwardStats), and backward's options:
// read through the shared validator (a misspelt option is an OptionError, never ignored), checked
// before the call is taken (a rejected call leaves backward callable), and ift's own backward
// options (backwardEps, backwardMaxDepth) checked before anything is solved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConvergenceError,
  NonFiniteError,
  OptionError,
  broyden,
  gdeq,
  ift,
  jfb,
  mse,
  picard,
  type Engine,
  type Gradients,
  type ImplicitOptions,
  type TanhBlock,
  type Tensor,
  adam,
  implicitBlock,
} from '../src';
import { refJfb, type RefBlock } from '../src/reference';
import { expectTyped, rejection } from './helpers/errors';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';

const D = 6;
const BATCH = 2;
const OPTIONS: ImplicitOptions = { solver: broyden, eps: 1e-5 };
/**
 * An adjoint solve that cannot reach 1e-6 in two Picard steps (λ = g + J_fᵀg: one step would give
 * λ = g, whose VJP is JFB's).
 */
const SHORT_ADJOINT = { ...OPTIONS, backwardSolver: picard, backwardMaxDepth: 2 };

let engine: Engine;
let f: TanhBlock;
let block: RefBlock;
let Qd: Tensor;
let qdData: Float64Array;
let g: Tensor;
let gData: Float64Array;

beforeAll(async () => {
  engine = await createTestEngine();
  const random = rng(11);
  const w = Float32Array.from(randomArray(random, D * D, 0.35));
  const b = Float32Array.from(randomArray(random, D, 0.3));
  block = { d: D, w: Float64Array.from(w), b: Float64Array.from(b) };
  f = implicitBlock(engine, { weight: w, bias: b });
  qdData = Float64Array.from(Float32Array.from(randomArray(random, BATCH * D, 1)));
  Qd = engine.tensor(qdData, [BATCH, D]);
  gData = Float64Array.from(Float32Array.from(randomArray(random, BATCH * D, 1)));
  g = engine.tensor(gData, [BATCH, D]);
});

afterAll(() => engine?.destroy());

function disposeGrads(grads: Gradients): void {
  for (const t of Object.values(grads)) t.dispose();
}

async function read(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

describe('ift: an adjoint solve that does not converge', () => {
  it("by default falls back to JFB, says so, and returns the JFB gradient (= the CPU reference's at uPrev)", async () => {
    const out = await ift(f, Qd, SHORT_ADJOINT);
    const grads = await out.backward(g);
    expect(out.backwardStats?.converged).toBe(false);
    expect(out.backwardStats?.nstep).toBe(2);
    expect(out.backwardInfo).toEqual({ method: 'jfb', converged: false, fellBack: true });
    const expected = refJfb(block, qdData, await read(out.uPrev), gData);
    expect(maxAbsDiff(await read(grads.weight), expected.w)).toBeLessThan(1e-5);
    expect(maxAbsDiff(await read(grads.bias), expected.b)).toBeLessThan(1e-5);
    expect(maxAbsDiff(await read(grads.Qd), expected.Qd)).toBeLessThan(1e-5);
    disposeGrads(grads);
    out.dispose();
  });

  it("'throw' rejects with ConvergenceError (backward) naming the residual; backward stays callable", async () => {
    const out = await ift(f, Qd, SHORT_ADJOINT);
    const err = await rejection(out.backward(g, { onUnconverged: 'throw' }));
    expectTyped(err, ConvergenceError, 'backward');
    expect((err as Error).message).toContain('backwardEps');
    expect(out.backwardStats?.converged).toBe(false);
    expect(out.backwardInfo).toBeUndefined();
    // The rejected call did not use the result up.
    const grads = await out.backward(g, { onUnconverged: 'jfb' });
    expect(out.backwardInfo?.fellBack).toBe(true);
    disposeGrads(grads);
    expectTyped(await rejection(out.backward(g)), OptionError, 'backward');
    out.dispose();
  });

  it("'accept' returns the unconverged adjoint's gradients, marked converged: false (not the JFB ones)", async () => {
    const out = await ift(f, Qd, SHORT_ADJOINT);
    const grads = await out.backward(g, { onUnconverged: 'accept' });
    expect(out.backwardInfo).toEqual({ method: 'ift', converged: false, fellBack: false });
    const values = await read(grads.weight);
    expect(values.every(Number.isFinite)).toBe(true);
    const jfbW = refJfb(block, qdData, await read(out.uPrev), gData).w;
    expect(maxAbsDiff(values, jfbW)).toBeGreaterThan(1e-4);
    disposeGrads(grads);
    out.dispose();
  });

  it('a converged adjoint solve gives method ift, converged true, whatever onUnconverged says', async () => {
    for (const onUnconverged of ['throw', 'jfb', 'accept'] as const) {
      const out = await ift(f, Qd, OPTIONS);
      const grads = await out.backward(g, { onUnconverged });
      expect(out.backwardStats?.converged).toBe(true);
      expect(out.backwardInfo).toEqual({ method: 'ift', converged: true, fellBack: false });
      disposeGrads(grads);
      out.dispose();
    }
  });

  it('a NaN in gradUStar is a NonFiniteError (gradUStar) under every policy, never a fallback', async () => {
    const nan = new Float32Array(BATCH * D).fill(0.5);
    nan[3] = Number.NaN;
    const buffer = engine.device.createBuffer({ size: nan.byteLength, usage: 0x80 | 0x4 | 0x8 });
    engine.device.queue.writeBuffer(buffer, 0, nan);
    const bad = engine.wrap(buffer, [BATCH, D]);
    for (const onUnconverged of ['throw', 'jfb', 'accept'] as const) {
      const out = await ift(f, Qd, OPTIONS);
      expectTyped(await rejection(out.backward(bad, { onUnconverged })), NonFiniteError, 'gradUStar');
      expect(out.backwardStats?.nonFinite).toBe(true);
      out.dispose();
    }
    buffer.destroy();
  });

  it('jfb and gdeq report their own method, with nothing to converge', async () => {
    for (const [name, wrapper] of [['jfb', jfb], ['gdeq', gdeq]] as const) {
      const out = await wrapper(f, Qd, OPTIONS);
      const grads = await out.backward(g, { onUnconverged: 'throw' });
      expect(out.backwardInfo).toEqual({ method: name, converged: true, fellBack: false });
      disposeGrads(grads);
      out.dispose();
    }
  });

  it('the README training recipe with ift: no step returns unconverged adjoint gradients unmarked, and the loss falls', async () => {
    const d = 16;
    const random = rng(3);
    const w = engine.tensor(Float32Array.from(randomArray(random, d * d, 0.5 / Math.sqrt(d))), [d, d]);
    const b = engine.tensor(Float32Array.from(randomArray(random, d, 0.1)), [d]);
    const layer = implicitBlock(engine, { weight: w, bias: b });
    const x = engine.tensor(Float32Array.from(randomArray(random, 4 * d, 1)), [4, d]);
    const target = engine.tensor(Float32Array.from(randomArray(random, 4 * d, 0.5)), [4, d]);
    const optimizer = adam(engine, [w, b], { lr: 2e-2 });
    const losses: number[] = [];
    for (let step = 0; step < 15; step++) {
      const out = await ift(layer, x, { solver: broyden, eps: 1e-4 });
      const loss = await mse(out.uStar, target);
      const grads = await out.backward(loss.grad);
      const info = out.backwardInfo;
      expect(info?.converged).toBe(out.backwardStats?.converged);
      expect(info?.method).toBe(info?.converged ? 'ift' : 'jfb');
      expect(info?.fellBack).toBe(!info?.converged);
      expect((await read(grads.weight)).every(Number.isFinite)).toBe(true);
      await optimizer.step([grads.weight, grads.bias]);
      losses.push(await loss.value());
      for (const t of [loss.grad, loss.total, grads.weight, grads.bias, grads.Qd]) t.dispose();
      out.dispose();
    }
    expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
    optimizer.dispose();
    layer.dispose();
    for (const t of [w, b, x, target]) t.dispose();
  });
});

describe("backward's options", () => {
  it("a misspelt option (checkfinite) is an OptionError naming it, with the known name; backward stays callable", async () => {
    const out = await jfb(f, Qd, OPTIONS);
    const err = await rejection(out.backward(g, { checkfinite: true } as unknown as { checkFinite: boolean }));
    expectTyped(err, OptionError, 'options.checkfinite');
    expect((err as Error).message).toContain("did you mean 'checkFinite'");
    const grads = await out.backward(g, { checkFinite: true });
    disposeGrads(grads);
    out.dispose();
  });

  it.each([
    [{ onUnconverged: 'fallback' }, 'options.onUnconverged'],
    [{ onUnconverged: 1 }, 'options.onUnconverged'],
    [{ checkFinite: 'yes' }, 'options.checkFinite'],
    [5, 'options'],
    [null, 'options'],
    [[true], 'options'],
  ])('%j is an OptionError (%s) that does not use up backward', async (options, argument) => {
    const out = await ift(f, Qd, OPTIONS);
    expectTyped(await rejection(out.backward(g, options as never)), OptionError, argument);
    expect(out.backwardStats).toBeUndefined();
    disposeGrads(await out.backward(g));
    out.dispose();
  });
});

describe("ift's backward options are checked before anything is solved", () => {
  it.each([
    [{ backwardEps: Number.NaN }, 'options.backwardEps'],
    [{ backwardEps: -1e-6 }, 'options.backwardEps'],
    [{ backwardEps: Infinity }, 'options.backwardEps'],
    [{ backwardEps: '1e-6' }, 'options.backwardEps'],
    [{ backwardMaxDepth: 0 }, 'options.backwardMaxDepth'],
    [{ backwardMaxDepth: 2.5 }, 'options.backwardMaxDepth'],
    [{ backwardMaxDepth: Number.NaN }, 'options.backwardMaxDepth'],
    [{ backwardSolver: 'broyden' }, 'options.backwardSolver'],
    [{ backwardEsp: 1e-6 }, 'options.backwardEsp'],
    [7, 'options'],
  ])('%j: OptionError (%s)', async (options, argument) => {
    const before = engine.readbackCount;
    const err = await rejection(ift(f, Qd, options as never));
    expectTyped(err, OptionError, argument);
    expect(engine.readbackCount).toBe(before);
    if (argument === 'options.backwardEsp') expect((err as Error).message).toContain("did you mean 'backwardEps'");
  });
});
