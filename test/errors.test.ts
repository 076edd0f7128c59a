// Bad input: every misuse throws (or rejects with) a typed error whose `.argument` names what to
// fix, and a solve that meets NaN/Infinity ends cleanly (converged false, nonFinite true, the best
// finite iterate) instead of hanging or returning garbage. Also: limits, disposed tensors, tensors
// of another engine, lost devices, and things that are not layers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeviceLostError,
  DisposedError,
  Engine,
  EngineMismatchError,
  LimitError,
  NonFiniteError,
  OptionError,
  ShapeError,
  anderson,
  broyden,
  picard,
  type ForwardIO,
  type ImplicitLayer,
  type SolverOptions,
  type TanhBlock,
  type Tensor,
  implicitBlock,
} from '../src';
import type { Kernel } from '../src/gpu/kernel';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { SOLVERS, expectTyped, rejection, sleep, thrown, withinTime, type Solver, Usage } from './helpers/errors';

const { STORAGE, COPY_SRC, COPY_DST } = Usage;

const D = 4;
const BATCH = 3;

let engine: Engine;
let f: TanhBlock;
let wData: Float32Array;
let bData: Float32Array;
let qdData: Float32Array;
const buffers: GPUBuffer[] = [];

beforeAll(async () => {
  engine = await createTestEngine();
  const random = rng(7);
  wData = Float32Array.from(randomArray(random, D * D, 0.3));
  bData = Float32Array.from(randomArray(random, D, 0.5));
  qdData = Float32Array.from(randomArray(random, BATCH * D, 1));
  f = implicitBlock(engine, { weight: wData, bias: bData });
});

afterAll(() => {
  for (const buffer of buffers) buffer.destroy();
  engine?.destroy();
});

/** A storage buffer of `values` that the test owns (for engine.wrap). */
function ownBuffer(device: GPUDevice, values: Float32Array, usage = STORAGE | COPY_SRC | COPY_DST): GPUBuffer {
  const buffer = device.createBuffer({ size: values.byteLength, usage });
  buffers.push(buffer);
  if (usage & COPY_DST) device.queue.writeBuffer(buffer, 0, values);
  return buffer;
}

function qd(shape: number[] = [BATCH, D]): Tensor {
  return engine.tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25), shape);
}

describe('tensor creation', () => {
  it('rejects data whose length does not match the shape', () => {
    expectTyped(thrown(() => engine.tensor(new Float32Array(5), [2, 3])), ShapeError, 'data');
    expectTyped(thrown(() => engine.tensor([1, 2, 3, 4, 5, 6, 7], [2, 3])), ShapeError, 'data');
  });

  it.each([[[]], [[0]], [[2.5]], [[-1]], [[2, 0]], [[3, Number.NaN]]])('rejects the shape %j', (shape: number[]) => {
    expectTyped(thrown(() => engine.tensor([], shape)), ShapeError, 'shape');
    expectTyped(thrown(() => engine.zeros(shape)), ShapeError, 'shape');
    const buffer = ownBuffer(engine.device, new Float32Array(4));
    expectTyped(thrown(() => engine.wrap(buffer, shape)), ShapeError, 'shape');
  });

  it('wraps a storage buffer without copying, and rejects a buffer that is too small or not STORAGE', async () => {
    const values = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const wrapped = engine.wrap(ownBuffer(engine.device, values), [2, 3]);
    expect(Array.from(await wrapped.read())).toEqual(Array.from(values));
    expectTyped(thrown(() => engine.wrap(ownBuffer(engine.device, values), [2, 4])), ShapeError, 'buffer');
    const notStorage = ownBuffer(engine.device, values, COPY_SRC | COPY_DST);
    expectTyped(thrown(() => engine.wrap(notStorage, [2, 3])), ShapeError, 'buffer');
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('rejects %s in the data, allocating nothing', (_name, bad: number) => {
    const before = engine.memory.allocatedBytes;
    expectTyped(thrown(() => engine.tensor([0, 1, bad, 3], [2, 2])), NonFiniteError, 'data');
    expectTyped(thrown(() => engine.tensor(Float32Array.from([bad]), [1])), NonFiniteError, 'data');
    expect(engine.memory.allocatedBytes).toBe(before);
  });

  it('rejects float64 values that overflow float32', () => {
    expectTyped(thrown(() => engine.tensor(Float64Array.from([1, 1e39]), [2])), NonFiniteError, 'data');
  });
});

describe('implicitBlock parameters', () => {
  it('rejects w that is not d × d and b that is not d', () => {
    expectTyped(thrown(() => implicitBlock(engine, { weight: new Float32Array(15), bias: new Float32Array(4) })), ShapeError, 'weight');
    expectTyped(thrown(() => implicitBlock(engine, { weight: new Float32Array(16), bias: new Float32Array(3) })), ShapeError, 'bias');
    expectTyped(thrown(() => implicitBlock(engine, { weight: new Float32Array(9), bias: new Float32Array(4) })), ShapeError, 'bias');
    const w45 = engine.tensor(new Float32Array(20), [4, 5]);
    expectTyped(thrown(() => implicitBlock(engine, { weight: w45, bias: bData })), ShapeError, 'weight');
    const wFlat = engine.tensor(new Float32Array(16), [16]);
    expectTyped(thrown(() => implicitBlock(engine, { weight: wFlat, bias: bData })), ShapeError, 'weight');
    const b14 = engine.tensor(new Float32Array(4), [1, 4]);
    expectTyped(thrown(() => implicitBlock(engine, { weight: wData, bias: b14 })), ShapeError, 'bias');
    const b5 = engine.tensor(new Float32Array(5), [5]);
    expectTyped(thrown(() => implicitBlock(engine, { weight: wData, bias: b5 })), ShapeError, 'bias');
    for (const t of [w45, wFlat, b14, b5]) t.dispose();
  });

  it('rejects missing parameters and a params value that is not an object', () => {
    const noW = { bias: bData } as unknown as Parameters<typeof implicitBlock>[1];
    const noB = { weight: wData } as unknown as Parameters<typeof implicitBlock>[1];
    const text = { weight: 'abc', bias: bData } as unknown as Parameters<typeof implicitBlock>[1];
    expectTyped(thrown(() => implicitBlock(engine, noW)), ShapeError, 'weight');
    expectTyped(thrown(() => implicitBlock(engine, noB)), ShapeError, 'bias');
    expectTyped(thrown(() => implicitBlock(engine, text)), ShapeError, 'weight');
    const notObject = 5 as unknown as Parameters<typeof implicitBlock>[1];
    expectTyped(thrown(() => implicitBlock(engine, notObject)), ShapeError, 'params');
  });

  it('rejects NaN in w and Infinity in b, uploading nothing', () => {
    const before = engine.memory.allocatedBytes;
    const w = Float32Array.from(wData);
    w[5] = Number.NaN;
    expectTyped(thrown(() => implicitBlock(engine, { weight: w, bias: bData })), NonFiniteError, 'weight');
    const b = Array.from(bData);
    b[2] = Number.POSITIVE_INFINITY;
    expectTyped(thrown(() => implicitBlock(engine, { weight: wData, bias: b })), NonFiniteError, 'bias');
    expect(engine.memory.allocatedBytes).toBe(before);
  });

  it('accepts valid parameters as arrays or tensors', () => {
    const block = implicitBlock(engine, { weight: Array.from(wData), bias: engine.tensor(bData, [D]) });
    expect(block.featureSize).toBe(D);
  });
});

describe.each(SOLVERS)('%s: bad arguments', (name, solve) => {
  it('rejects Qd whose last dimension is not d, or of rank 3', async () => {
    for (const shape of [[BATCH, D + 1], [D + 1], [2, BATCH, D], [BATCH * D]]) {
      expectTyped(await rejection(solve(f, qd(shape))), ShapeError, 'Qd');
    }
  });

  it('rejects Qd that is not a tensor', async () => {
    const notTensor = qdData as unknown as Tensor;
    expectTyped(await rejection(solve(f, notTensor)), ShapeError, 'Qd');
  });

  it("rejects u0 whose shape is not Qd's", async () => {
    expectTyped(await rejection(solve(f, qd(), { u0: qd([BATCH + 1, D]) })), ShapeError, 'options.u0');
    expectTyped(await rejection(solve(f, qd(), { u0: qd([D]) })), ShapeError, 'options.u0');
    expectTyped(await rejection(solve(f, qd([D]), { u0: qd() })), ShapeError, 'options.u0');
  });

  it('rejects something that is not a layer as f', async () => {
    const notLayers: unknown[] = [
      null,
      42,
      {},
      qd(),
      (u: number) => u,
      { encodeForward: 1, featureSize: D },
      { encodeForward: () => undefined, prepare: () => Promise.resolve(), featureSize: D, params: {} }, // no engine
      { engine, encodeForward: () => undefined, prepare: () => Promise.resolve(), featureSize: 0, params: {} },
    ];
    for (const value of notLayers) {
      expectTyped(await rejection(solve(value as ImplicitLayer, qd())), OptionError, 'f');
    }
  });

  it('runs (converging) on good arguments, so the failures above are the arguments', async () => {
    const result = await withinTime(solve(f, engine.tensor(qdData, [BATCH, D]), { u0: qd() }));
    expect(result.stats.converged).toBe(true);
    expect(result.stats.nonFinite).toBe(false);
    result.dispose();
  });
});

/** Options that must be refused, with the option the error names. */
const BAD_OPTIONS: [string, Record<string, unknown>, string][] = [
  ['an unknown key', { epsilon: 1e-3 }, 'options.epsilon'],
  ['eps NaN', { eps: Number.NaN }, 'options.eps'],
  ['eps Infinity', { eps: Number.POSITIVE_INFINITY }, 'options.eps'],
  ['eps a string', { eps: '1e-3' }, 'options.eps'],
  ['maxDepth 0', { maxDepth: 0 }, 'options.maxDepth'],
  ['maxDepth -3', { maxDepth: -3 }, 'options.maxDepth'],
  ['maxDepth 2.5', { maxDepth: 2.5 }, 'options.maxDepth'],
  ['windowSize 0', { windowSize: 0 }, 'options.windowSize'],
  ['windowSize 33', { windowSize: 33 }, 'options.windowSize'],
  ['windowSize 1.5', { windowSize: 1.5 }, 'options.windowSize'],
  ['mixingParam -0.1', { mixingParam: -0.1 }, 'options.mixingParam'],
  ['mixingParam 1.1', { mixingParam: 1.1 }, 'options.mixingParam'],
  ['mixingParam NaN', { mixingParam: Number.NaN }, 'options.mixingParam'],
  ['negative reg', { reg: -1e-9 }, 'options.reg'],
  ['lbfgsThres 0', { lbfgsThres: 0 }, 'options.lbfgsThres'],
  ['lbfgsThres 1.5', { lbfgsThres: 1.5 }, 'options.lbfgsThres'],
  ["stopMode 'foo'", { stopMode: 'foo' }, 'options.stopMode'],
  ["ls 'yes'", { ls: 'yes' }, 'options.ls'],
  ['ls 1', { ls: 1 }, 'options.ls'],
  ['returnFinal 0', { returnFinal: 0 }, 'options.returnFinal'],
  ['checkEvery 0', { checkEvery: 0 }, 'options.checkEvery'],
  ['key -1', { key: -1 }, 'options.key'],
  ['u0 an array', { u0: [0, 0, 0, 0] }, 'options.u0'],
  ['u0 a look-alike', { u0: { buffer: {}, shape: [BATCH, D] } }, 'options.u0'],
];

describe.each(SOLVERS)('%s: options', (_name, solve) => {
  it.each(BAD_OPTIONS)('rejects %s', async (_case, options, argument) => {
    const before = engine.memory.allocatedBytes;
    expectTyped(await rejection(solve(f, qd(), options as SolverOptions)), OptionError, argument);
    // qd() itself allocated one buffer; the solve allocated nothing.
    expect(engine.memory.allocatedBytes - before).toBeLessThanOrEqual(BATCH * D * 4);
  });

  it.each([[5], ['abc'], [null], [[]], [true]])('rejects options %j (not an object)', async (options: unknown) => {
    expectTyped(await rejection(solve(f, qd(), options as SolverOptions)), OptionError, 'options');
  });

  it.each([[0], [-1]])('accepts eps = %d and then runs to maxDepth', async (eps: number) => {
    const Qd = engine.tensor(qdData, [BATCH, D]);
    const capped = await withinTime(solve(f, Qd, { eps, maxDepth: 5 }));
    expect(capped.stats.nstep).toBe(5);
    expect(capped.stats.converged).toBe(false);
    expect(capped.stats.nonFinite).toBe(false);
    // The same problem with the default eps converges early: the 5 steps came from eps.
    const normal = await withinTime(solve(f, Qd, { maxDepth: 50 }));
    expect(normal.stats.converged).toBe(true);
    capped.dispose();
    normal.dispose();
  });

  it('accepts (and ignores) the options of the other solvers', async () => {
    const result = await withinTime(
      solve(f, engine.tensor(qdData, [BATCH, D]), {
        ls: true,
        windowSize: 3,
        reg: 1e-6,
        mixingParam: 0.9,
        restarting: true,
        lbfgsThres: null,
        returnB: false,
      }),
    );
    expect(result.stats.converged).toBe(true);
    result.dispose();
  });
});

describe('disposed tensors', () => {
  it.each(SOLVERS)('%s rejects a disposed Qd or u0', async (_name, solve) => {
    const Qd = qd();
    Qd.dispose();
    expectTyped(await rejection(solve(f, Qd)), DisposedError, 'Qd');
    const u0 = qd();
    u0.dispose();
    expectTyped(await rejection(solve(f, qd(), { u0 })), DisposedError, 'options.u0');
  });

  it.each(SOLVERS)('%s rejects a block whose w was disposed after the block was made', async (_name, solve) => {
    const w = engine.tensor(wData, [D, D]);
    const block = implicitBlock(engine, { weight: w, bias: bData });
    w.dispose();
    expectTyped(await rejection(solve(block, qd())), DisposedError, 'f.params.weight');
  });

  it('implicitBlock rejects a disposed w or b', () => {
    const w = engine.tensor(wData, [D, D]);
    w.dispose();
    expectTyped(thrown(() => implicitBlock(engine, { weight: w, bias: bData })), DisposedError, 'weight');
    const b = engine.tensor(bData, [D]);
    b.dispose();
    expectTyped(thrown(() => implicitBlock(engine, { weight: wData, bias: b })), DisposedError, 'bias');
  });

  it('read() and buffer fail after dispose(); dispose() twice is harmless', async () => {
    const t = engine.tensor([1, 2, 3], [3]);
    expect(Array.from(await t.read())).toEqual([1, 2, 3]);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(await rejection(t.read())).toBeInstanceOf(DisposedError);
    expect(thrown(() => t.buffer)).toBeInstanceOf(DisposedError);
  });

  it("a result's tensors fail after result.dispose()", async () => {
    const result = await withinTime(picard(f, engine.tensor(qdData, [BATCH, D])));
    await result.uStar.read();
    result.dispose();
    expect(await rejection(result.uStar.read())).toBeInstanceOf(DisposedError);
    expect(await rejection(result.uPrev.read())).toBeInstanceOf(DisposedError);
  });
});

describe('tensors of another engine', () => {
  let other: Engine;
  beforeAll(async () => {
    other = await createTestEngine();
  });
  afterAll(() => other?.destroy());

  it.each(SOLVERS)('%s rejects Qd or u0 made by another engine', async (_name, solve) => {
    const foreign = other.tensor(qdData, [BATCH, D]);
    expectTyped(await rejection(solve(f, foreign)), EngineMismatchError, 'Qd');
    expectTyped(await rejection(solve(f, qd(), { u0: foreign })), EngineMismatchError, 'options.u0');
    // A layer of the other engine with this engine's Qd: Qd is the foreign one from f's view.
    const otherBlock = implicitBlock(other, { weight: wData, bias: bData });
    expectTyped(await rejection(solve(otherBlock, qd())), EngineMismatchError, 'Qd');
  });

  it('implicitBlock rejects w or b made by another engine', () => {
    expectTyped(thrown(() => implicitBlock(engine, { weight: other.tensor(wData, [D, D]), bias: bData })), EngineMismatchError, 'weight');
    expectTyped(thrown(() => implicitBlock(engine, { weight: wData, bias: other.tensor(bData, [D]) })), EngineMismatchError, 'bias');
  });
});

describe('device limits', () => {
  it('engine.zeros larger than a storage binding throws LimitError before allocating', () => {
    const limit = engine.device.limits.maxStorageBufferBindingSize;
    const d = 1024;
    const rows = Math.floor(limit / (4 * d)) + 1;
    const before = engine.memory.allocatedBytes;
    expectTyped(thrown(() => engine.zeros([rows, d])), LimitError, 'shape');
    expect(engine.memory.allocatedBytes).toBe(before);
  });

  it.each(SOLVERS)('%s rejects a batch too large to dispatch (modest d, huge batch), allocating nothing', async (_name, solve) => {
    const d = 4;
    const rows = 4 * engine.device.limits.maxComputeWorkgroupsPerDimension + 4;
    const Qd = engine.zeros([rows, d]);
    const before = engine.memory.allocatedBytes;
    expectTyped(await rejection(solve(f, Qd)), LimitError, 'Qd');
    expect(engine.memory.allocatedBytes).toBe(before);
    Qd.dispose();
  });

  describe('a Qd that fits, with solver memory that does not', () => {
    let Qd: Tensor;
    const d = 64;
    beforeAll(() => {
      // n floats such that 33 Anderson slots (windowSize 32) or 40 Broyden columns exceed the
      // binding limit, while Qd itself (and Picard's buffers) fit.
      const limit = Math.min(engine.device.limits.maxStorageBufferBindingSize, engine.device.limits.maxBufferSize);
      const rows = Math.ceil(limit / 4 / 33 / d) + 1;
      Qd = engine.zeros([rows, d]);
    });
    afterAll(() => Qd?.dispose());

    it.each([
      ['anderson', anderson, { windowSize: 32 }, 'options.windowSize'],
      ['broyden', broyden, { lbfgsThres: 40 }, 'options.lbfgsThres'],
    ] as [string, Solver, SolverOptions, string][])('%s throws LimitError before allocating', async (_name, solve, options, argument) => {
      const block = implicitBlock(engine, { weight: new Float32Array(d * d), bias: new Float32Array(d) });
      const before = engine.memory.allocatedBytes;
      expectTyped(await rejection(solve(block, Qd, options)), LimitError, argument);
      expect(engine.memory.allocatedBytes).toBe(before);
    });
  });

  it('a maxDepth past the documented bound (2**20) is an OptionError before anything is allocated; at the bound Picard runs', async () => {
    const limit = engine.device.limits.maxStorageBufferBindingSize;
    const Qd = engine.tensor(qdData, [BATCH, D]);
    const before = engine.memory.allocatedBytes;
    for (const maxDepth of [Math.ceil(limit / 8), 2 ** 20 + 1, 2 ** 32 + 3]) {
      expectTyped(await rejection(picard(f, Qd, { maxDepth, trace: true })), OptionError, 'options.maxDepth');
      expectTyped(await rejection(anderson(f, Qd, { maxDepth })), OptionError, 'options.maxDepth');
    }
    expect(engine.memory.allocatedBytes).toBe(before);
    const result = await withinTime(picard(f, Qd, { maxDepth: 2 ** 20, trace: true }));
    expect(result.stats.converged).toBe(true);
    expect(engine.memory.peakBytes).toBeLessThan(limit);
    result.dispose();
  });
});

describe('lost device', () => {
  /** An engine of its own (destroying the device ends it), with a block and Qd on it. */
  async function doomedEngine(): Promise<{ doomed: Engine; block: TanhBlock; Qd: Tensor }> {
    const doomed = await createTestEngine();
    const block = implicitBlock(doomed, { weight: wData, bias: bData });
    return { doomed, block, Qd: doomed.tensor(qdData, [BATCH, D]) };
  }

  it('after destroy() and device.lost: tensors, reads and every solver throw DeviceLostError', async () => {
    const { doomed, block, Qd } = await doomedEngine();
    doomed.device.destroy();
    await withinTime(doomed.device.lost);
    await sleep(20);
    expectTyped(thrown(() => doomed.tensor([1, 2], [2])), DeviceLostError, 'engine.tensor');
    expectTyped(thrown(() => doomed.zeros([2])), DeviceLostError, 'engine.zeros');
    expectTyped(thrown(() => implicitBlock(doomed, { weight: wData, bias: bData })), DeviceLostError, 'implicitBlock');
    const buffer = doomed.device.createBuffer({ size: 16, usage: STORAGE });
    expectTyped(thrown(() => doomed.wrap(buffer, [4])), DeviceLostError, 'engine.wrap');
    expectTyped(await rejection(Qd.read()), DeviceLostError, 'read');
    for (const [name, solve] of SOLVERS) {
      expectTyped(await rejection(solve(block, Qd)), DeviceLostError, name);
    }
  });

  it('engine.destroy() of an engine that made its device has the same effect', async () => {
    const { doomed, block, Qd } = await doomedEngine();
    doomed.destroy();
    await withinTime(doomed.device.lost);
    expectTyped(await rejection(broyden(block, Qd)), DeviceLostError, 'broyden');
  });

  it.each([
    ['cold (kernels not compiled yet)', false],
    ['warm (kernels cached)', true],
  ])('a solve started right after destroy() rejects, never hangs: %s', async (_case, warm: boolean) => {
    const { doomed, block, Qd } = await doomedEngine();
    if (warm) {
      for (const [, solve] of SOLVERS) (await withinTime(solve(block, Qd))).dispose();
    }
    doomed.device.destroy();
    // No await between destroy() and the solves: device.lost has not resolved yet.
    const pending = SOLVERS.map(([, solve]) => rejection(solve(block, Qd)));
    const errors = await Promise.all(pending);
    SOLVERS.forEach(([name], i) => expectTyped(errors[i], DeviceLostError, name));
  });

  it.each(SOLVERS)('%s: a device lost in the middle of a solve rejects it, with no unhandled rejection', async (name, solve) => {
    const { doomed, block } = await doomedEngine();
    const Qd = doomed.tensor(new Float32Array(64 * D).fill(0.5), [64, D]);
    (await withinTime(solve(block, Qd, { maxDepth: 2 }))).dispose();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const start = doomed.readbackCount;
      // eps 0: runs to maxDepth, several chunks in flight at a time.
      const solving = solve(block, Qd, { eps: 0, maxDepth: 1_000_000, checkEvery: 2 });
      const outcome = rejection(solving);
      while (doomed.readbackCount < start + 2) await sleep(1);
      doomed.device.destroy();
      expectTyped(await outcome, DeviceLostError, name);
      await sleep(300);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

/** f(u, Qd) = u ⊙ u + Qd elementwise: with Qd = 0.3 it has no fixed point and Picard overflows. */
const SQUARE_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> gate: array<u32>;
struct SquareParams { n: u32 }
@group(0) @binding(1) var<uniform> params: SquareParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (gate[0] != 0u) { return; }
  let i = id.x;
  if (i < params.n) { out[i] = u[i] * u[i] + qd[i]; }
}
`;

class SquareLayer implements ImplicitLayer {
  readonly params = {};
  private kernel?: Kernel;
  constructor(
    readonly engine: Engine,
    readonly featureSize: number,
  ) {}
  async prepare(): Promise<void> {
    this.kernel ??= await this.engine.kernel('test.square', SQUARE_WGSL);
  }
  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    const kernel = this.kernel;
    if (!kernel) throw new Error('prepare() first');
    const n = batch * this.featureSize;
    const params = this.engine.params(kernel, { n });
    kernel.dispatch(pass, kernel.bind({ gate: io.gate, params, u: io.input, qd: io.Qd, out: io.output }), Math.ceil(n / 64));
  }  encodeAdjoint(): void {
    throw new Error('SquareLayer has no adjoint (these tests only solve)');
  }
}

function allFinite(values: Float32Array): boolean {
  return values.every((v) => Number.isFinite(v));
}

/** A hand-written layer with a bug: its encodeForward throws on every call after the first `good` ones. */
class ThrowingLayer extends SquareLayer {
  calls = 0;
  constructor(engine: Engine, featureSize: number, private readonly good: number) {
    super(engine, featureSize);
  }
  override encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    this.calls += 1;
    if (this.calls > this.good) throw new Error('ThrowingLayer: encodeForward failed');
    super.encodeForward(pass, io, batch);
  }
}

describe('a layer whose encoding throws', () => {
  // Chunks are submitted ahead of the one awaited (overlap): a second chunk that fails the same
  // way must not surface as an unhandled rejection, which ends a Node process by default.
  it.each(SOLVERS)('%s: the solve rejects with the layer\'s error, with no unhandled rejection', async (_name, solve) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    const Qd = engine.tensor(qdData, [BATCH, D]);
    try {
      // good = 0: the first chunk's encoding fails; good = 1: the second's (a solve records the
      // layer's evaluation once per chunk), submitted before the first is read back.
      for (const good of [0, 1]) {
        const layer = new ThrowingLayer(engine, D, good);
        const error = await rejection(solve(layer, Qd, { eps: 0, maxDepth: 100_000, checkEvery: 2 }));
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).message).toBe('ThrowingLayer: encodeForward failed');
        expect(layer.calls).toBeGreaterThan(good);
      }
      await sleep(200);
      expect(unhandled).toEqual([]);
      // The engine still solves afterwards.
      (await withinTime(solve(f, Qd, { maxDepth: 3 }))).dispose();
    } finally {
      process.off('unhandledRejection', onUnhandled);
      Qd.dispose();
    }
  });
});

describe('NaN and Infinity during a solve', () => {
  /** Qd with one NaN, through engine.wrap (which does not look at values). */
  function nanQd(): Tensor {
    const values = Float32Array.from(qdData);
    values[5] = Number.NaN;
    return engine.wrap(ownBuffer(engine.device, values), [BATCH, D]);
  }

  it.each(SOLVERS)('%s: NaN in Qd ends the solve with nonFinite and the finite starting point', async (_name, solve) => {
    const u0Values = Float32Array.from(randomArray(rng(3), BATCH * D, 0.5));
    for (const u0 of [undefined, engine.tensor(u0Values, [BATCH, D])]) {
      const result = await withinTime(solve(f, nanQd(), { u0, maxDepth: 40 }));
      expect(result.stats.nonFinite).toBe(true);
      expect(result.stats.converged).toBe(false);
      // The first evaluation is already NaN: the only finite iterate is the start.
      expect(result.stats.nstep).toBeLessThanOrEqual(1);
      const uStar = await result.uStar.read();
      expect(allFinite(uStar)).toBe(true);
      expect(Array.from(uStar)).toEqual(Array.from(u0 ? u0Values : new Float32Array(BATCH * D)));
      expect(allFinite(await result.uPrev.read())).toBe(true);
      result.dispose();
    }
  });

  it.each(SOLVERS)('%s: NaN in u0 ends the solve at once with nonFinite', async (_name, solve) => {
    const values = new Float32Array(BATCH * D).fill(0.1);
    values[2] = Number.NaN;
    const u0 = engine.wrap(ownBuffer(engine.device, values), [BATCH, D]);
    const result = await withinTime(solve(f, engine.tensor(qdData, [BATCH, D]), { u0, maxDepth: 40 }));
    expect(result.stats.nonFinite).toBe(true);
    expect(result.stats.converged).toBe(false);
    expect(result.stats.nstep).toBeLessThanOrEqual(1);
    expect(result.tnstep).toBeLessThanOrEqual(1);
    result.dispose();
  });

  it('picard: an iterate that overflows mid-solve ends it with nonFinite and the best finite iterate', async () => {
    const n = 8;
    const layer = new SquareLayer(engine, n);
    const c = 0.3;
    const Qd = engine.tensor(new Float32Array(n).fill(c), [n]);
    const result = await withinTime(picard(layer, Qd, { maxDepth: 100, trace: true }));
    // The float32 iteration on the CPU: u_k = u_{k−1}² + c from u_0 = 0. Picard measures
    // r_k = u_k − u_{k−1}; the solve stops at the first k where ‖r_k‖² is no longer finite
    // (float32 overflows there, a step before u_k itself does).
    const iterates = [0];
    for (;;) {
      const u = iterates[iterates.length - 1];
      const next = Math.fround(Math.fround(u * u) + c);
      iterates.push(next);
      const r = Math.fround(next - u);
      if (!Number.isFinite(Math.fround(n * Math.fround(r * r)))) break;
    }
    const step = (k: number): number => Math.abs(iterates[k] - iterates[k - 1]);
    let best = 1;
    for (let k = 2; k < iterates.length - 1; k++) if (step(k) < step(best)) best = k;
    expect(best).toBeGreaterThan(1); // a genuine mid-solve best, not the start
    expect(result.stats.nonFinite).toBe(true);
    expect(result.stats.converged).toBe(false);
    expect(result.stats.nstep).toBe(iterates.length - 1);
    expect(result.stats.nstep).toBeLessThan(100);
    const uStar = await result.uStar.read();
    const uPrev = await result.uPrev.read();
    for (let i = 0; i < n; i++) {
      expect(uStar[i]).toBeCloseTo(iterates[best], 5);
      expect(uPrev[i]).toBeCloseTo(iterates[best - 1], 5);
    }
    expect(Number.isFinite(result.stats.absResidual)).toBe(true);
    expect(result.stats.absResidual).toBeCloseTo(Math.sqrt(n) * step(best), 4);
    const trace = result.stats.trace;
    expect(trace).toBeDefined();
    expect(Number.isFinite(trace?.abs[trace.abs.length - 1] ?? 0)).toBe(false);
    result.dispose();
  });

  it.each([
    ['anderson', anderson],
    ['broyden', broyden],
  ] as [string, Solver][])('%s: on a map without a fixed point it ends within maxDepth with a finite best iterate', async (_name, solve) => {
    const n = 8;
    const layer = new SquareLayer(engine, n);
    const Qd = engine.tensor(new Float32Array(n).fill(0.3), [n]);
    const result = await withinTime(solve(layer, Qd, { maxDepth: 60 }));
    expect(result.stats.converged).toBe(false);
    expect(result.stats.nstep).toBeLessThanOrEqual(60);
    expect(allFinite(await result.uStar.read())).toBe(true);
    expect(Number.isFinite(result.stats.absResidual)).toBe(true);
    result.dispose();
  });
});
