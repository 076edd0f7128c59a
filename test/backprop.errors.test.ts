// Misuse of the backprop wrappers (jfb, gdeq, ift) and their `backward`: every misuse rejects
// with a typed error naming the argument at fault; non-finite gradients are either caught on
// request (`backward(g, { checkFinite: true })`: one 4-byte readback) or propagate as NaN (JFB,
// GDEQ), and IFT's adjoint solve rejects instead of returning the gradients of a stale λ; Broyden
// factors that do not fit the problem (only a custom solver can return such) are rejected before
// they are used, and no failure leaks GPU memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnchoraxError,
  DisposedError,
  EngineMismatchError,
  LimitError,
  NonFiniteError,
  OptionError,
  ShapeError,
  anderson,
  broyden,
  gdeq,
  ift,
  jfb,
  picard,
  type Engine,
  type Gradients,
  type ImplicitOptions,
  type ImplicitResult,
  type SolveResult,
  type Solver,
  type TanhBlock,
  type Tensor,
  implicitBlock,
} from '../src';
import { Usage } from './helpers/errors';
import { createTestEngine, randomArray, rng } from './helpers/engine';

type Wrapper = (f: TanhBlock, Qd: Tensor, options?: ImplicitOptions) => Promise<ImplicitResult>;
type ErrorClass = new (argument: string, message: string) => AnchoraxError;

const WRAPPERS: [string, Wrapper][] = [
  ['jfb', jfb],
  ['gdeq', gdeq],
  ['ift', ift],
];

const { STORAGE, COPY_SRC, COPY_DST } = Usage;

const D = 5;
const BATCH = 3;
const SHAPE = [BATCH, D];
/** Broyden (so GDEQ has factors), converging in a few steps. */
const OPTIONS: ImplicitOptions = { solver: broyden, eps: 1e-5 };

let engine: Engine;
let f: TanhBlock;
let Qd: Tensor;
let g: Tensor;
let gData: Float32Array;
const buffers: GPUBuffer[] = [];

beforeAll(async () => {
  engine = await createTestEngine();
  const random = rng(2024);
  f = implicitBlock(engine, { weight: Float32Array.from(randomArray(random, D * D, 0.3)), bias: Float32Array.from(randomArray(random, D, 0.5)) });
  Qd = engine.tensor(randomArray(random, BATCH * D), SHAPE);
  gData = Float32Array.from(randomArray(random, BATCH * D));
  g = engine.tensor(gData, SHAPE);
});

afterAll(() => {
  for (const buffer of buffers) buffer.destroy();
  engine?.destroy();
});

/** The reason `promise` rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function expectTyped(err: unknown, type: ErrorClass, argument: string): void {
  expect(err).toBeInstanceOf(type);
  expect((err as AnchoraxError).argument).toBe(argument);
  expect((err as AnchoraxError).message.startsWith(`${argument}: `)).toBe(true);
}

/** A gradient over a buffer the test owns: engine.wrap does not check values (engine.tensor does). */
function wrapped(values: Float32Array, shape: number[] = SHAPE): Tensor {
  const buffer = engine.device.createBuffer({ size: values.byteLength, usage: STORAGE | COPY_SRC | COPY_DST });
  buffers.push(buffer);
  engine.device.queue.writeBuffer(buffer, 0, values);
  return engine.wrap(buffer, shape);
}

/** gData with `value` at `index`. */
function gradWith(value: number, index: number): Float32Array {
  const values = Float32Array.from(gData);
  values[index] = value;
  return values;
}

async function expectFiniteGrads(grads: Gradients): Promise<void> {
  for (const t of Object.values(grads)) {
    const values = await t.read();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(values.some((v) => v !== 0)).toBe(true);
  }
}

function disposeGrads(grads: Gradients): void {
  for (const t of Object.values(grads)) t.dispose();
}

async function bits(t: Tensor): Promise<number[]> {
  return Array.from(new Uint32Array((await t.read()).buffer));
}

describe.each(WRAPPERS)('%s: backward misuse', (_name, wrapper) => {
  it('a second backward rejects with OptionError (backward); the first one worked', async () => {
    const out = await wrapper(f, Qd, OPTIONS);
    const grads = await out.backward(g);
    await expectFiniteGrads(grads);
    expectTyped(await rejection(out.backward(g)), OptionError, 'backward');
    disposeGrads(grads);
    out.dispose();
  });

  it('backward after dispose() rejects with DisposedError (backward)', async () => {
    const out = await wrapper(f, Qd, OPTIONS);
    out.dispose();
    expectTyped(await rejection(out.backward(g)), DisposedError, 'backward');
    expect(out.uStar.disposed && out.uPrev.disposed).toBe(true);
  });

  it('a gradient of the wrong shape, or not a tensor, is a ShapeError (gradUStar) that does not use up backward', async () => {
    const out = await wrapper(f, Qd, OPTIONS);
    const flat = engine.tensor(gData, [BATCH * D]);
    const transposed = engine.tensor(gData, [D, BATCH]);
    expectTyped(await rejection(out.backward(flat)), ShapeError, 'gradUStar');
    expectTyped(await rejection(out.backward(transposed)), ShapeError, 'gradUStar');
    expectTyped(await rejection(out.backward(gData as unknown as Tensor)), ShapeError, 'gradUStar');
    const grads = await out.backward(g);
    await expectFiniteGrads(grads);
    disposeGrads(grads);
    flat.dispose();
    transposed.dispose();
    out.dispose();
  });

  it('a disposed gradient is a DisposedError (gradUStar)', async () => {
    const out = await wrapper(f, Qd, OPTIONS);
    const gone = engine.tensor(gData, SHAPE);
    gone.dispose();
    expectTyped(await rejection(out.backward(gone)), DisposedError, 'gradUStar');
    out.dispose();
  });

  it('options.solver that is not a function is an OptionError (options.solver)', async () => {
    for (const solver of ['broyden', null, 42, {}]) {
      const options = { solver } as unknown as ImplicitOptions;
      expectTyped(await rejection(wrapper(f, Qd, options)), OptionError, 'options.solver');
    }
  });

  it('backward options that are not { checkFinite?: boolean } are an OptionError', async () => {
    const out = await wrapper(f, Qd, OPTIONS);
    expectTyped(await rejection(out.backward(g, 'yes' as unknown as { checkFinite: boolean })), OptionError, 'options');
    expectTyped(await rejection(out.backward(g, { checkFinite: 1 } as unknown as { checkFinite: boolean })), OptionError, 'options.checkFinite');
    const grads = await out.backward(g, { checkFinite: false });
    await expectFiniteGrads(grads);
    disposeGrads(grads);
    out.dispose();
  });
});

describe('a gradient from another engine', () => {
  let other: Engine;
  beforeAll(async () => {
    other = await createTestEngine();
  });
  afterAll(() => other?.destroy());

  it.each(WRAPPERS)('%s: EngineMismatchError (gradUStar)', async (_name, wrapper) => {
    const out = await wrapper(f, Qd, OPTIONS);
    const foreign = other.tensor(gData, SHAPE);
    expectTyped(await rejection(out.backward(foreign)), EngineMismatchError, 'gradUStar');
    foreign.dispose();
    out.dispose();
  });
});

describe('ift: backward options', () => {
  it('backwardSolver that is not a function is an OptionError (options.backwardSolver)', async () => {
    for (const backwardSolver of ['picard', 0]) {
      const options = { ...OPTIONS, backwardSolver } as unknown as ImplicitOptions;
      expectTyped(await rejection(ift(f, Qd, options)), OptionError, 'options.backwardSolver');
    }
  });
});

describe('non-finite gradients', () => {
  const BAD: [string, number, number][] = [
    ['NaN in the first value', Number.NaN, 0],
    ['+Infinity in the middle', Number.POSITIVE_INFINITY, 7],
    ['-Infinity in the last value', Number.NEGATIVE_INFINITY, BATCH * D - 1],
  ];

  describe.each(WRAPPERS)('%s with checkFinite', (_name, wrapper) => {
    it.each(BAD)('%s: NonFiniteError (gradUStar) after one readback; backward stays usable', async (_case, value, index) => {
      const out = await wrapper(f, Qd, OPTIONS);
      const before = engine.readbackCount;
      expectTyped(await rejection(out.backward(wrapped(gradWith(value, index)), { checkFinite: true })), NonFiniteError, 'gradUStar');
      expect(engine.readbackCount - before).toBe(1);
      // Nothing was computed, so the result still takes a (finite) gradient.
      const grads = await out.backward(g, { checkFinite: true });
      await expectFiniteGrads(grads);
      disposeGrads(grads);
      out.dispose();
    });
  });

  it('checkFinite on a finite gradient costs one readback and changes nothing (jfb, bit for bit)', async () => {
    const checked = await jfb(f, Qd, OPTIONS);
    const plain = await jfb(f, Qd, OPTIONS);
    let before = engine.readbackCount;
    const a = await checked.backward(g, { checkFinite: true });
    expect(engine.readbackCount - before).toBe(1);
    before = engine.readbackCount;
    const b = await plain.backward(g);
    expect(engine.readbackCount - before).toBe(0);
    for (const key of ['weight', 'bias', 'Qd'] as const) expect(await bits(a[key])).toEqual(await bits(b[key]));
    disposeGrads(a);
    disposeGrads(b);
    checked.dispose();
    plain.dispose();
  });

  it('checks exactly the tensor: across several workgroups, and not past its end in a larger wrapped buffer', async () => {
    const d = 37;
    const batch = 20; // 740 values: three 256-thread workgroups, the last one partial
    const random = rng(99);
    const big = implicitBlock(engine, { weight: Float32Array.from(randomArray(random, d * d, 0.1)), bias: Float32Array.from(randomArray(random, d, 0.5)) });
    const bigQd = engine.tensor(randomArray(random, d * batch), [batch, d]);
    const values = Float32Array.from(randomArray(random, d * batch + 4));
    values[d * batch] = Number.NaN; // just past the tensor: not part of it
    const tail = wrapped(values, [batch, d]);
    const out = await jfb(big, bigQd, { solver: picard, eps: 1e-4 });
    const grads = await out.backward(tail, { checkFinite: true });
    await expectFiniteGrads(grads);
    disposeGrads(grads);
    out.dispose();

    values[d * batch] = 0;
    values[d * batch - 1] = Number.NaN; // the last value of the tensor, in the last workgroup
    const last = wrapped(values, [batch, d]);
    const again = await jfb(big, bigQd, { solver: picard, eps: 1e-4 });
    expectTyped(await rejection(again.backward(last, { checkFinite: true })), NonFiniteError, 'gradUStar');
    again.dispose();
    bigQd.dispose();
    big.params.weight.dispose();
    big.params.bias.dispose();
  });

  it('without checkFinite, jfb and gdeq read nothing back and return NaN gradients', async () => {
    for (const wrapper of [jfb, gdeq]) {
      const out = await wrapper(f, Qd, OPTIONS);
      const before = engine.readbackCount;
      const grads = await out.backward(wrapped(gradWith(Number.NaN, 4)));
      expect(engine.readbackCount - before).toBe(0);
      expect((await grads.Qd.read()).some(Number.isNaN)).toBe(true);
      expect((await grads.weight.read()).some(Number.isNaN)).toBe(true);
      disposeGrads(grads);
      out.dispose();
    }
  });

  it.each([
    ['picard', picard],
    ['anderson', anderson],
    ['broyden', broyden],
  ] as const)('without checkFinite, ift rejects with NonFiniteError: its adjoint solve (%s) met NaN', async (_name, backwardSolver) => {
    const out = await ift(f, Qd, { ...OPTIONS, backwardSolver });
    expectTyped(await rejection(out.backward(wrapped(gradWith(Number.NaN, 4)))), NonFiniteError, 'gradUStar');
    expect(out.backwardStats?.nonFinite).toBe(true);
    expect(out.backwardStats?.converged).toBe(false);
    out.dispose();
  });
});

describe('Broyden factors that do not fit (GDEQ)', () => {
  /** broyden on this problem, its factors replaced by what `replace` makes of them. */
  function customSolver(replace: (B: NonNullable<SolveResult['B']>) => SolveResult['B']): Solver {
    return async (layer, q, options) => {
      const result = await broyden(layer, q, options);
      if (!result.B) throw new Error('gdeq asked for no factors');
      result.B = replace(result.B);
      return result;
    };
  }

  /** allocatedBytes after each of `runs` calls: equal iff a failing call leaks nothing. */
  async function memoryAfter(call: () => Promise<unknown>, runs = 3): Promise<number[]> {
    const sizes: number[] = [];
    for (let i = 0; i < runs; i++) {
      await rejection(call());
      sizes.push(engine.memory.allocatedBytes);
    }
    return sizes;
  }

  it('U and Vᵀ of another problem size are a ShapeError (options.solver), freeing the solve', async () => {
    const solver = customSolver((B) => {
      // Factors of a solve with one more row: U [(BATCH + 1)·D, L] instead of [BATCH·D, L].
      const other = { Us: engine.zeros([(BATCH + 1) * D, B.validMask.length]), VTs: engine.zeros([B.validMask.length, (BATCH + 1) * D]), validMask: B.validMask };
      B.Us.dispose();
      B.VTs.dispose();
      return other;
    });
    const err = await rejection(gdeq(f, Qd, { ...OPTIONS, solver }));
    expectTyped(err, ShapeError, 'options.solver');
    expect((err as Error).message).toContain(`[${BATCH * D}, 3]`);
    const sizes = await memoryAfter(() => gdeq(f, Qd, { ...OPTIONS, solver }));
    expect(sizes[2]).toBe(sizes[1]);
  });

  it('a validMask that does not match U, or whose valid columns are not first, is a ShapeError (options.solver)', async () => {
    const short = customSolver((B) => ({ ...B, validMask: B.validMask.slice(1) }));
    expectTyped(await rejection(gdeq(f, Qd, { ...OPTIONS, solver: short })), ShapeError, 'options.solver');
    const holes = customSolver((B) => ({ ...B, validMask: B.validMask.map((_, j) => j > 0) }));
    expectTyped(await rejection(gdeq(f, Qd, { ...OPTIONS, solver: holes })), ShapeError, 'options.solver');
  });

  it('disposed factors are a DisposedError (options.solver)', async () => {
    const solver = customSolver((B) => {
      B.Us.dispose();
      return B;
    });
    expectTyped(await rejection(gdeq(f, Qd, { ...OPTIONS, solver })), DisposedError, 'options.solver');
  });

  it('more than 1024 columns is a LimitError (options.lbfgsThres) that frees the solve', async () => {
    const options: ImplicitOptions = { ...OPTIONS, maxDepth: 4, lbfgsThres: 1025 };
    expectTyped(await rejection(gdeq(f, Qd, options)), LimitError, 'options.lbfgsThres');
    const sizes = await memoryAfter(() => gdeq(f, Qd, options));
    expect(sizes[2]).toBe(sizes[1]);
    // 1024 columns are fine.
    const out = await gdeq(f, Qd, { ...options, lbfgsThres: 1024 });
    const grads = await out.backward(g);
    await expectFiniteGrads(grads);
    disposeGrads(grads);
    out.dispose();
  });
});

describe('memory', () => {
  it.each(WRAPPERS)('%s with returnB: true frees everything on dispose() (no factors left behind)', async (_name, wrapper) => {
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const out = await wrapper(f, Qd, { ...OPTIONS, returnB: true });
      disposeGrads(await out.backward(g));
      out.dispose();
      sizes.push(engine.memory.allocatedBytes);
    }
    expect(sizes[2]).toBe(sizes[1]);
  });
});
