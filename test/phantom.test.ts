// Phantom gradients (`phantom`, src/backprop/phantom.ts): the float64 reference checked on its own
// (finite differences of the unrolled steps; the two forms at an exact fixed point; the Neumann
// series against the IFT solve), then the GPU's both forms against it on random data for the tanh
// block and a four-stage sequential layer, k = 1 and λ = 1 against jfb bit for bit, bad options,
// misuse of `backward`, and memory.
//
// The forward solve is stopped early (eps 0, maxDepth 3), so uPrev is far from the fixed point:
// the damped steps u_i then differ from each other, and the unrolled form (VJPs at every u_i, value
// u_k) is told apart from the Neumann form (VJPs at uPrev, value f(uPrev)) by a wide margin.
// Every comparison is made at the GPU's own uPrev, so what is measured is phantom's part alone.
// Tolerances (float32 GPU against float64 on the same float32 data), about 10× the largest error
// measured on SwiftShader [in brackets]: values max abs 1.5e-6 [1.2e-7], gradients relative 2e-6
// [1.6e-7]. Leaving out the damping of the cotangent (unrolled) or the `+ gradUStar` of the
// Neumann steps fails them by orders of magnitude.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DisposedError,
  OptionError,
  add,
  anderson,
  broyden,
  gelu,
  implicitBlock,
  jfb,
  linear,
  phantom,
  picard,
  Qd as QdStage,
  sequential,
  type AnchoraxError,
  type Engine,
  type Gradients,
  type ImplicitLayer,
  type PhantomOptions,
  type Tensor,
} from '../src';
import {
  refActivationStage,
  refAddQdStage,
  refBlockDifferentiable,
  refBlockForward,
  refIft,
  refJfb,
  refPhantom,
  refPhantomBlock,
  refSequentialForward,
  refSequentialVjp,
  type RefBlock,
  type RefDifferentiable,
  type RefLinear,
  type RefPhantomOptions,
} from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rejectsWith, relError, rng, f32 } from './helpers/engine';
import { refLinearStage } from './helpers/layers';

const TOL = { value: 1.5e-6, grad: 2e-6 };
/** A solve stopped well before the fixed point (see the header). */
const EARLY = { eps: 0, maxDepth: 3 };

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());


/** A tanh block with ‖w‖_F = 0.6 (so ‖w‖₂ ≤ 0.6: a contraction), b ∈ ±0.5. */
function randomBlock(seed: number, d: number): RefBlock {
  const random = rng(seed);
  const raw = randomArray(random, d * d);
  const scale = 0.6 / Math.hypot(...raw);
  return { d, w: f32(raw.map((x) => x * scale)), b: f32(randomArray(random, d, 0.5)) };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** 200 plain steps of a contraction with factor ≤ 0.6 from 0: a fixed point to float64 precision. */
function exactFixedPoint(f: RefDifferentiable, n: number): Float64Array {
  let u: Float64Array = new Float64Array(n);
  for (let i = 0; i < 200; i++) u = f.forward(u);
  return u;
}

describe('the float64 reference', () => {
  const d = 5;
  const rows = 2;
  const block = randomBlock(31, d);
  const random = rng(32);
  const qd = randomArray(random, rows * d);
  const u0 = randomArray(random, rows * d, 0.8);
  const g = randomArray(random, rows * d);

  it('unrolled: the gradients are those of ⟨ḡ, u_k⟩ (central differences in Qd and w, u_0 held fixed)', () => {
    const options: RefPhantomOptions = { steps: 4, damping: 0.6, form: 'unrolled' };
    const grads = refPhantomBlock(block, qd, u0, g, options);
    const loss = (b: RefBlock, q: Float64Array) => dot(g, refPhantomBlock(b, q, u0, g, options).uStar);
    const h = 1e-6;
    for (const i of [0, 3, 7]) {
      const plus = Float64Array.from(qd);
      const minus = Float64Array.from(qd);
      plus[i] += h;
      minus[i] -= h;
      expect(Math.abs((loss(block, plus) - loss(block, minus)) / (2 * h) - grads.Qd[i])).toBeLessThan(1e-8);
    }
    for (const i of [1, 12, 24]) {
      const plus = { ...block, w: Float64Array.from(block.w) };
      const minus = { ...block, w: Float64Array.from(block.w) };
      plus.w[i] += h;
      minus.w[i] -= h;
      expect(Math.abs((loss(plus, qd) - loss(minus, qd)) / (2 * h) - grads.w[i])).toBeLessThan(1e-8);
    }
    // u_k is the fourth damped step, not f(u_0).
    expect(maxAbsDiff(grads.uStar, refBlockForward(block, u0, qd))).toBeGreaterThan(1e-2);
  });

  it('at an exact fixed point both forms agree, and many Neumann terms give the IFT gradient', () => {
    const f = refBlockDifferentiable(block, qd);
    const star = exactFixedPoint(f, rows * d);
    const unrolled = refPhantom(f, star, g, { steps: 6, damping: 0.7, form: 'unrolled' });
    const neumann = refPhantom(f, star, g, { steps: 6, damping: 0.7, form: 'neumann' });
    const exact = refIft(block, qd, star, g);
    const series = refPhantom(f, star, g, { steps: 300, damping: 0.8, form: 'neumann' });
    for (const key of ['w', 'b', 'Qd'] as const) {
      expect(relError(unrolled.grads[key], neumann.grads[key])).toBeLessThan(1e-12);
      expect(relError(series.grads[key], exact[key])).toBeLessThan(1e-10);
      // Six terms are not yet the IFT gradient: the comparisons above can tell.
      expect(relError(neumann.grads[key], exact[key])).toBeGreaterThan(1e-3);
    }
  });

  it('k = 1, λ = 1 is refJfb for both forms', () => {
    const expected = refJfb(block, qd, u0, g);
    for (const form of ['unrolled', 'neumann'] as const) {
      const got = refPhantomBlock(block, qd, u0, g, { steps: 1, damping: 1, form });
      for (const key of ['uStar', 'w', 'b', 'Qd'] as const) expect(maxAbsDiff(got[key], expected[key])).toBe(0);
    }
  });
});

/** A layer on the GPU with its float64 counterpart (of the same float32 values) and data. */
interface Problem {
  f: ImplicitLayer;
  ref: RefDifferentiable;
  /** The GPU gradient's name of each reference gradient. */
  names: Record<string, string>;
  shape: number[];
  qd: Float64Array;
  g: Float64Array;
  Qd: Tensor;
  gT: Tensor;
  dispose(): void;
}

function tanhProblem(seed: number, d: number, batch: number): Problem {
  const block = randomBlock(seed, d);
  const random = rng(seed + 1);
  const shape = batch === 0 ? [d] : [batch, d];
  const n = Math.max(batch, 1) * d;
  const qd = f32(randomArray(random, n));
  const g = f32(randomArray(random, n));
  const f = implicitBlock(engine, { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) });
  return withData(f, refBlockDifferentiable(block, qd), { w: 'weight', b: 'bias', Qd: 'Qd' }, shape, qd, g);
}

/** The problem of layer `f` (disposed with it) on Qd = `qd`, gradUStar = `g`. */
function withData(f: ImplicitLayer & { dispose(): void }, ref: RefDifferentiable, names: Record<string, string>, shape: number[], qd: Float64Array, g: Float64Array): Problem {
  const [Qd, gT] = [engine.tensor(qd, shape), engine.tensor(g, shape)];
  return {
    f, ref, names, shape, qd, g, Qd, gT,
    dispose() {
      Qd.dispose();
      gT.dispose();
      f.dispose();
    },
  };
}

/** linear(d→h), gelu, linear(h→d), add(Qd), as in test/sequential.test.ts. */
function sequentialProblem(seed: number, d: number, h: number, batch: number): Problem {
  const random = rng(seed);
  const randomLinear = (inF: number, outF: number): RefLinear => ({
    inFeatures: inF, outFeatures: outF, W: f32(randomArray(random, inF * outF, 0.8 / Math.sqrt(inF))), b: f32(randomArray(random, outF, 0.3)),
  });
  const first = randomLinear(d, h);
  const second = randomLinear(h, d);
  const stages = [refLinearStage(first), refActivationStage('gelu'), refLinearStage(second), refAddQdStage];
  const qd = f32(randomArray(random, batch * d));
  const g = f32(randomArray(random, batch * d));
  const f = sequential(
    linear(engine, { weight: Float32Array.from(first.W), bias: Float32Array.from(first.b) }),
    gelu(),
    linear(engine, { weight: Float32Array.from(second.W), bias: Float32Array.from(second.b) }),
    add(QdStage),
  );
  const ref: RefDifferentiable = {
    forward: (u) => refSequentialForward(stages, u, qd),
    vjp: (u, gOut) => {
      const { du, dQd, dParams } = refSequentialVjp(stages, u, qd, gOut);
      return { du, grads: { ...dParams, Qd: dQd } };
    },
  };
  const names = { '0.weight': '0.weight', '0.bias': '0.bias', '2.weight': '2.weight', '2.bias': '2.bias', Qd: 'Qd' };
  return withData(f, ref, names, [batch, d], qd, g);
}

function disposeGrads(grads: Gradients): void {
  for (const t of Object.values(grads)) t.dispose();
}

/** Runs phantom and compares its uStar and gradients with refPhantom at the GPU's uPrev. */
async function expectReference(p: Problem, options: PhantomOptions, resolved: RefPhantomOptions): Promise<void> {
  const out = await phantom(p.f, p.Qd, options);
  const uPrev = Float64Array.from(await out.uPrev.read());
  const expected = refPhantom(p.ref, uPrev, p.g, resolved);
  const valueError = maxAbsDiff(await out.uStar.read(), expected.uStar);
  expect(valueError).toBeLessThan(TOL.value);
  // The early stop leaves uPrev far from the fixed point: u_k is clearly not f(uPrev).
  const jfbValue = p.ref.forward(uPrev);
  if (resolved.form === 'unrolled') expect(maxAbsDiff(expected.uStar, jfbValue)).toBeGreaterThan(1e-3);
  const grads = await out.backward(p.gT);
  expect(out.backwardInfo).toEqual({ method: 'phantom', converged: true, fellBack: false });
  expect(Object.keys(grads).sort()).toEqual(Object.values(p.names).sort());
  for (const [refName, name] of Object.entries(p.names)) {
    const error = relError(await grads[name].read(), expected.grads[refName]);
    expect(error).toBeLessThan(TOL.grad);
  }
  disposeGrads(grads);
  out.dispose();
  p.dispose();
}

describe('the GPU against the float64 reference', () => {
  const TANH_CASES: [string, number, PhantomOptions, RefPhantomOptions][] = [
    ['unrolled, k 4, λ 0.6, picard, Qd [3, 7]', 3, { solver: picard, steps: 4, damping: 0.6 }, { steps: 4, damping: 0.6, form: 'unrolled' }],
    ['neumann, k 4, λ 0.6, anderson, Qd [3, 7]', 3, { solver: anderson, steps: 4, damping: 0.6, form: 'neumann' }, { steps: 4, damping: 0.6, form: 'neumann' }],
    ['defaults (unrolled, k 5, λ 0.5), broyden, Qd [7]', 0, { solver: broyden }, { steps: 5, damping: 0.5, form: 'unrolled' }],
    ['unrolled, k 3, λ 1, Qd [3, 7]', 3, { solver: picard, steps: 3, damping: 1, form: 'unrolled' }, { steps: 3, damping: 1, form: 'unrolled' }],
    ['neumann, k 3, λ 1, Qd [7]', 0, { solver: picard, steps: 3, damping: 1, form: 'neumann' }, { steps: 3, damping: 1, form: 'neumann' }],
  ];
  it.each(TANH_CASES)('tanh block, %s', async (_label, batch, options, resolved) => {
    await expectReference(tanhProblem(41 + batch, 7, batch), { ...EARLY, ...options }, resolved);
  });

  it.each(['unrolled', 'neumann'] as const)('sequential(linear, gelu, linear, add(Qd)), %s, k 3, λ 0.7', async (form) => {
    const p = sequentialProblem(51, 6, 9, 2);
    await expectReference(p, { ...EARLY, solver: picard, steps: 3, damping: 0.7, form }, { steps: 3, damping: 0.7, form });
  });
});

/** Bit patterns of a tensor's values. */
async function bits(t: Tensor): Promise<number[]> {
  return Array.from(new Uint32Array((await t.read()).buffer));
}

describe('k = 1, λ = 1 is jfb', () => {
  it.each(['unrolled', 'neumann'] as const)('%s: uPrev, uStar and every gradient bit for bit', async (form) => {
    const p = tanhProblem(61, 9, 4);
    const options = { solver: anderson, eps: 1e-5 };
    const viaJfb = await jfb(p.f, p.Qd, options);
    const viaPhantom = await phantom(p.f, p.Qd, { ...options, steps: 1, damping: 1, form });
    expect(await bits(viaPhantom.uPrev)).toEqual(await bits(viaJfb.uPrev));
    expect(await bits(viaPhantom.uStar)).toEqual(await bits(viaJfb.uStar));
    const [a, b] = [await viaJfb.backward(p.gT), await viaPhantom.backward(p.gT)];
    for (const name of ['weight', 'bias', 'Qd']) expect(await bits(b[name])).toEqual(await bits(a[name]));
    disposeGrads(a);
    disposeGrads(b);
    viaJfb.dispose();
    viaPhantom.dispose();
    p.dispose();
  });
});

function expectTyped(err: AnchoraxError, type: new (argument: string, message: string) => AnchoraxError, argument: string): void {
  expect(err).toBeInstanceOf(type);
  expect(err.argument).toBe(argument);
  expect(err.message.startsWith(`${argument}: `)).toBe(true);
}

/**
 * GPU bytes in use (allocated and not back in the pool), once the GPU is idle and the readbacks a
 * solve submitted ahead have given their staging buffers back.
 */
async function inUse(): Promise<number> {
  await engine.device.queue.onSubmittedWorkDone();
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return engine.memory.allocatedBytes - engine.memory.pooledBytes;
}

describe('options and misuse', () => {
  let p: Problem;
  beforeAll(() => {
    p = tanhProblem(71, 5, 3);
  });
  afterAll(() => p?.dispose());

  it.each([
    ['options.steps', [0, -1, 1.5, Number.NaN, 2 ** 21, '3']],
    ['options.damping', [0, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '0.5']],
    ['options.form', ['series', 'Unrolled', 1, null]],
  ] as const)('%s: bad values are an OptionError naming it, before the solve', async (argument, values) => {
    const key = argument.slice('options.'.length);
    const before = await inUse();
    for (const value of values) {
      const options = { [key]: value } as unknown as PhantomOptions;
      expectTyped(await rejectsWith(phantom(p.f, p.Qd, options)), OptionError, argument);
    }
    expect(await inUse()).toBe(before);
  });

  it('an unknown option is an OptionError with a suggestion; a bad solver names options.solver', async () => {
    const err = await rejectsWith(phantom(p.f, p.Qd, { step: 3 } as unknown as PhantomOptions));
    expectTyped(err, OptionError, 'options.step');
    expect(err.message).toContain("did you mean 'steps'");
    expectTyped(await rejectsWith(phantom(p.f, p.Qd, { solver: 'broyden' } as unknown as PhantomOptions)), OptionError, 'options.solver');
  });

  it.each(['unrolled', 'neumann'] as const)('%s: a second backward is an OptionError (backward); after dispose() a DisposedError', async (form) => {
    const out = await phantom(p.f, p.Qd, { solver: picard, steps: 3, form });
    const grads = await out.backward(p.gT);
    expect(Object.values(grads).every((t) => !t.disposed)).toBe(true);
    expectTyped(await rejectsWith(out.backward(p.gT)), OptionError, 'backward');
    disposeGrads(grads);
    out.dispose();
    const unused = await phantom(p.f, p.Qd, { solver: picard, steps: 3, form });
    unused.dispose();
    expect(unused.uStar.disposed && unused.uPrev.disposed).toBe(true);
    expectTyped(await rejectsWith(unused.backward(p.gT)), DisposedError, 'backward');
  });

  it.each(['unrolled', 'neumann'] as const)('%s: nothing is left in use after dispose() (k 4, λ 0.5)', async (form) => {
    const run = async () => {
      const out = await phantom(p.f, p.Qd, { solver: picard, steps: 4, damping: 0.5, form });
      disposeGrads(await out.backward(p.gT));
      out.dispose();
    };
    await run(); // the layer's own buffers for this batch, made once
    const before = await inUse();
    await run();
    expect(await inUse()).toBe(before);
  });
});
