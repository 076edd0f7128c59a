// The dense-product library (shaders/lib/gemm_rows|gemm_split|gemm_tiled.wgsl, through
// src/layers/dense.ts) against the float64 reference: every product shape (rows 1, 3, 33, 256;
// k and n not multiples of 4 or of the 64-wide tiles) for each forward choice, each epilogue
// chain forward and through the adjoint (δ, ∂Qd written and accumulated, ∂weight/∂bias together
// and alone, ∂x with and without gradInputAdd), and the deterministic reduction order.
// Tolerances are first-order float32 error bounds of each value, propagated through the chain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, Tensor } from '../src';
import {
  DenseKernels,
  MIN_CHUNK,
  NO_DROPOUT,
  NO_EPILOGUE,
  SPLIT_TARGET_GROUPS,
  TILED_TARGET_GROUPS,
  chooseTile,
  gemmTiles,
  tileShapes,
  type DenseOverrides,
  type Epilogue,
  type EpilogueOp,
  type ForwardKernelChoice,
} from '../src/layers/dense';
import { dropoutParams } from '../src/layers/dropout';
import { refActivation, refActivationVjp, refDropoutStageFactors, refLinearForward, refLinearVjp, type RefActivation, type RefLinear } from '../src/reference';
import { createTestEngine, randomArray, rng, f32 } from './helpers/engine';
import { gateBuffer, submit } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
/** The DenseKernels of the tests, cached per (choice, k, n, chain); disposed before the engine. */
const kernelCache = new Map<string, DenseKernels>();
afterAll(() => {
  for (const dense of kernelCache.values()) dense.dispose();
  engine?.destroy();
});

const U = 2 ** -24;
const abs = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, Math.abs);

// Dropout of the chains that have one: training mode, evaluation EVAL of a solve with KEY.
const DROPOUT = Object.freeze({ rate: 0.3, noise: 'per-iteration' as const });
const KEY = 4321;
const EVAL = 6;
const SALT = 2;

/** The epilogues under test; a chain with dropout runs with a training-mode gate. */
const CHAINS: Readonly<Record<string, readonly EpilogueOp[]>> = {
  empty: [],
  'add-qd': ['add-qd'],
  'add-qd→tanh': ['add-qd', 'tanh'],
  relu: ['relu'],
  gelu: ['gelu'],
  'add-qd→tanh→dropout': ['add-qd', 'tanh', 'dropout'],
  'tanh→add-qd→gelu→dropout': ['tanh', 'add-qd', 'gelu', 'dropout'],
};
const CHAIN_NAMES = Object.keys(CHAINS);

function epilogueOf(ops: readonly EpilogueOp[]): Epilogue {
  return { ops, dropout: ops.includes('dropout') ? { ...dropoutParams(DROPOUT), drop_salt: SALT } : NO_DROPOUT };
}

/** A value and its error bound, elementwise. */
interface Bounded {
  value: Float64Array;
  err: Float64Array;
}

/** The chain in float64 from v = x·W + b: each op's input (for the adjoint) and the output, with error bounds. */
function refChainForward(ops: readonly EpilogueOp[], v: Bounded, qd: Float64Array, factors: Float64Array): Bounded[] {
  const states = [v];
  let { value, err } = v;
  for (const op of ops) {
    const input = value;
    if (op === 'add-qd') {
      value = input.map((x, i) => x + qd[i]);
      err = err.map((e, i) => e + U * Math.abs(value[i]));
    } else if (op === 'dropout') {
      value = input.map((x, i) => x * factors[i]);
      err = err.map((e, i) => factors[i] * e + U * Math.abs(value[i]));
    } else {
      value = refActivation(op as RefActivation, input);
      // Slopes are at most 1.13 (gelu); the activation's own rounding is a few ulps of 1 + |x|.
      err = err.map((e, i) => 1.2 * e + 16 * U * (1 + Math.abs(input[i])));
    }
    states.push({ value, err });
  }
  return states;
}

/** δ (the cotangent of v) and the cotangent at add(Qd), walking the chain back from g. */
function refChainAdjoint(ops: readonly EpilogueOp[], states: Bounded[], g: Float64Array, factors: Float64Array): { delta: Bounded; dQd?: Bounded } {
  let c: Bounded = { value: Float64Array.from(g), err: new Float64Array(g.length) };
  let dQd: Bounded | undefined;
  for (let j = ops.length - 1; j >= 0; j--) {
    const op = ops[j];
    const { value: x, err: ex } = states[j];
    if (op === 'add-qd') {
      dQd = c;
    } else if (op === 'dropout') {
      const value = c.value.map((v, i) => v * factors[i]);
      c = { value, err: c.err.map((e, i) => factors[i] * e + U * Math.abs(value[i])) };
    } else {
      const slope = refActivationVjp(op as RefActivation, x, new Float64Array(x.length).fill(1));
      const value = c.value.map((v, i) => v * slope[i]);
      const err = c.err.map((e, i) => {
        const cAbs = Math.abs(c.value[i]);
        // relu's slope jumps at 0: within the input's error of 0 either slope may come out.
        if (op === 'relu') return Math.abs(x[i]) <= ex[i] ? cAbs + e : e;
        // |act''| ≤ 0.8 for tanh and gelu; the slope's own rounding is a few ulps of 1 + |x|.
        return cAbs * (ex[i] + 16 * U * (1 + Math.abs(x[i]))) + 1.2 * e + U * Math.abs(value[i]);
      });
      c = { value, err };
    }
  }
  return { delta: c, dQd };
}

/** max |got − expected| / allowed (≤ 1 passes); allowed doubles the bound and never reaches 0. */
function worstRatio(got: ArrayLike<number>, expected: Bounded): number {
  expect(got.length).toBe(expected.value.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const allowed = 2 * expected.err[i] + 1e-30;
    worst = Math.max(worst, Math.abs(got[i] - expected.value[i]) / allowed);
  }
  return worst;
}

function expectWithin(got: ArrayLike<number>, expected: Bounded, what: string): void {
  expect(worstRatio(got, expected), what).toBeLessThanOrEqual(1);
}

/** One random problem of the product C [rows, n] = x [rows, k] · W [k, n], float32-representable. */
interface Problem {
  rows: number;
  ref: RefLinear;
  x: Float64Array;
  qd: Float64Array;
  g: Float64Array;
  add: Float64Array;
  prefill: Float64Array;
}

function makeProblem(seed: number, rows: number, k: number, n: number): Problem {
  const random = rng(seed);
  return {
    rows,
    ref: { inFeatures: k, outFeatures: n, W: f32(randomArray(random, k * n, 1.5 / Math.sqrt(k))), b: f32(randomArray(random, n, 0.5)) },
    x: f32(randomArray(random, rows * k, 1)),
    qd: f32(randomArray(random, rows * n, 1)),
    g: f32(randomArray(random, rows * n, 1)),
    add: f32(randomArray(random, rows * k, 1)),
    prefill: f32(randomArray(random, rows * n, 1)),
  };
}

/** The float64 forward of a chain, with bounds: the product's from the sum of |terms|. */
function refForward(p: Problem, ops: readonly EpilogueOp[], factors: Float64Array): Bounded[] {
  const { ref, x, qd } = p;
  const absRef: RefLinear = { ...ref, W: abs(ref.W), b: abs(ref.b) };
  const v = refLinearForward(ref, x);
  // k products and the bias, summed in any order (split-k's partial sums included).
  const bound = refLinearForward(absRef, abs(x)).map((s) => (ref.inFeatures + 3) * U * s);
  return refChainForward(ops, { value: v, err: bound }, qd, factors);
}

/** The buffers of one problem on the GPU (released by `dispose`). */
class Buffers {
  private readonly owned: Tensor[] = [];
  constructor(private readonly engine: Engine) {}

  upload(values: ArrayLike<number>): GPUBuffer {
    const tensor = this.engine.tensor(Float32Array.from(values), [values.length]);
    this.owned.push(tensor);
    return tensor.buffer;
  }

  /** A buffer of `size` values the GPU must overwrite (filled with 7). */
  junk(size: number): GPUBuffer {
    return this.upload(new Float32Array(size).fill(7));
  }

  dispose(): void {
    for (const tensor of this.owned) tensor.dispose();
  }
}

/** What the adjoint is asked for. */
type Variant = 'all' | 'accumulate-qd, ∂weight alone, ∂x + add' | '∂bias alone';
const VARIANTS: readonly Variant[] = ['all', 'accumulate-qd, ∂weight alone, ∂x + add', '∂bias alone'];

interface Shape {
  choice: ForwardKernelChoice;
  rows: number;
  k: number;
  n: number;
  /** The forward the plan must pick on this adapter (so each case tests the product it names). */
  forward: 'rows' | 'row' | 'split' | 'tiled';
  /** Plan as on a GPU, or with one tiling (the GPU kernels, run here on this adapter). */
  overrides?: DenseOverrides;
  /** Whether the few-row forward reads the weight as vec4 (default false). */
  vector?: boolean;
  /** The tile edge of the forward's register tiling, when it is tiled. */
  edge?: number;
  /** The chains run (default all). */
  chains?: readonly string[];
}

// Every rows count for every choice, k and n off every multiple of 4 and 64 (67 crosses a tile).
// Split-k needs k ≥ 64 to split (chunks of at least 32); with k = 7 it falls back to the few-row product.
const SHAPES: Shape[] = [
  { choice: 'tiled', rows: 1, k: 7, n: 5, forward: 'rows' },
  { choice: 'tiled', rows: 3, k: 70, n: 67, forward: 'rows' },
  { choice: 'tiled', rows: 33, k: 7, n: 67, forward: 'rows' },
  { choice: 'tiled', rows: 256, k: 70, n: 5, forward: 'rows' },
  { choice: 'split-k', rows: 1, k: 150, n: 5, forward: 'split' },
  { choice: 'split-k', rows: 3, k: 70, n: 67, forward: 'split' },
  { choice: 'split-k', rows: 33, k: 70, n: 5, forward: 'split' },
  { choice: 'split-k', rows: 256, k: 7, n: 67, forward: 'rows' },
  { choice: 'matmul', rows: 1, k: 70, n: 67, forward: 'tiled' },
  { choice: 'matmul', rows: 3, k: 7, n: 5, forward: 'tiled' },
  { choice: 'matmul', rows: 33, k: 70, n: 67, forward: 'tiled' },
  { choice: 'matmul', rows: 256, k: 7, n: 67, forward: 'tiled' },
  // This CPU adapter's one-row body (lib/gemm_row.wgsl): n a multiple of 4, 260 columns (a second
  // workgroup holding one quad of 64), k = 131 (two rounds of 64 staged values and a ragged third).
  { choice: 'auto', rows: 1, k: 131, n: 260, forward: 'row', vector: true },
  { choice: 'tiled', rows: 1, k: 7, n: 12, forward: 'row', vector: true, chains: ['add-qd→tanh→dropout', 'gelu'] },
  // The GPU's plans: vec4 loads of the weight (n a multiple of 4, ragged against the 256 columns
  // of a workgroup), split-k over a ragged last slice, the register-tiled adjoint; tilings forced.
  { choice: 'auto', rows: 3, k: 300, n: 68, forward: 'split', vector: true, overrides: { adapter: 'gpu' }, chains: ['empty', 'add-qd→tanh→dropout'] },
  { choice: 'auto', rows: 2, k: 70, n: 67, forward: 'split', overrides: { adapter: 'gpu' }, chains: ['tanh→add-qd→gelu→dropout'] },
  { choice: 'tiled', rows: 512, k: 70, n: 132, forward: 'rows', vector: true, overrides: { adapter: 'gpu' }, chains: ['add-qd', 'gelu'] },
  { choice: 'tiled', rows: 5, k: 70, n: 132, forward: 'rows', overrides: { adapter: 'gpu' }, chains: ['relu'] },
  { choice: 'auto', rows: 40, k: 70, n: 67, forward: 'tiled', edge: 32, overrides: { adapter: 'gpu' }, chains: ['add-qd→tanh'] },
  { choice: 'matmul', rows: 33, k: 70, n: 67, forward: 'tiled', edge: 128, overrides: { tileEdge: 128 }, chains: ['empty', 'add-qd→tanh→dropout'] },
  { choice: 'matmul', rows: 130, k: 9, n: 133, forward: 'tiled', edge: 128, overrides: { tileEdge: 128 }, chains: ['relu'] },
];

/** The DenseKernels of a chain for a shape, prepared for its rows. */
async function kernelsFor(shape: Shape, chain: string): Promise<DenseKernels> {
  const key = `${shape.choice}/${shape.k}/${shape.n}/${chain}/${JSON.stringify(shape.overrides ?? {})}`;
  let dense = kernelCache.get(key);
  if (!dense) {
    dense = new DenseKernels(engine, shape.k, shape.n, epilogueOf(CHAINS[chain]), shape.choice, 'rows', 'gemm test', true, shape.overrides);
    kernelCache.set(key, dense);
  }
  await dense.prepare(shape.rows);
  return dense;
}

describe('dense-product library: every shape, choice and epilogue against the float64 reference', () => {
  it.each(SHAPES.map((s, i) => [s.choice, s.rows, s.k, s.n, JSON.stringify(s.overrides ?? {}), i] as const))('%s: rows %i, k %i, n %i %s', async (_c, rows, k, n, _o, index) => {
    const shape = SHAPES[index];
    const p = makeProblem(1000 * index + 17, rows, k, n);
    const size = rows * n;
    const factors = refDropoutStageFactors(DROPOUT, KEY, SALT, EVAL, size);
    const training = gateBuffer(engine, [0, EVAL, KEY, 1]);
    const buffers = new Buffers(engine);
    const x = buffers.upload(p.x);
    const operands = { x, weight: buffers.upload(p.ref.W), bias: buffers.upload(p.ref.b), qd: buffers.upload(p.qd) };
    const gradOutput = buffers.upload(p.g);
    const gradInputAdd = buffers.upload(p.add);
    const absW: RefLinear = { ...p.ref, W: abs(p.ref.W), b: abs(p.ref.b) };
    for (const [c, chain] of CHAIN_NAMES.entries()) {
      if (shape.chains && !shape.chains.includes(chain)) continue;
      const ops = CHAINS[chain];
      const dense = await kernelsFor(shape, chain);
      const plan = dense.plan(rows);
      expect(plan.forward).toBe(shape.forward);
      expect(plan.vector && plan.forward !== 'tiled').toBe(shape.vector ?? false);
      if (shape.edge !== undefined) expect(plan.tiles.forward.edge).toBe(shape.edge);
      const gate = ops.includes('dropout') ? training : engine.openGate();
      const states = refForward(p, ops, factors);

      // Forward.
      const y = buffers.junk(size);
      submit(engine, (pass) => dense.encodeForward(pass, gate, operands, y, rows));
      expectWithin(await engine.readBuffer(y, size * 4), states[ops.length], `${chain}: forward`);

      // Adjoint: the variant rotates over chains and shapes, so each appears with every choice.
      const variant = VARIANTS[(c + index) % VARIANTS.length];
      const readsQd = ops.includes('add-qd');
      const { delta, dQd } = refChainAdjoint(ops, states, p.g, factors);
      const absDelta = abs(delta.value);
      const rounding = refLinearVjp(absW, abs(p.x), absDelta);
      const propagated = refLinearVjp(absW, abs(p.x), delta.err);
      const exact = refLinearVjp(p.ref, p.x, delta.value);
      const bounded = (value: Float64Array, terms: number, sums: Float64Array, carried: Float64Array): Bounded => ({
        value,
        err: value.map((_, i) => (terms + 2) * U * sums[i] + carried[i]),
      });
      const gradQd = readsQd && variant !== '∂bias alone' ? buffers.upload(variant === 'all' ? new Float32Array(size).fill(7) : p.prefill) : undefined;
      const accumulate = variant !== 'all';
      const gradWeight = variant === '∂bias alone' ? undefined : buffers.junk(k * n);
      const gradBias = variant === 'all' || variant === '∂bias alone' ? buffers.junk(n) : undefined;
      const gradInput = variant === '∂bias alone' ? undefined : buffers.junk(rows * k);
      const withAdd = variant === 'accumulate-qd, ∂weight alone, ∂x + add';
      submit(engine, (pass) =>
        dense.encodeAdjoint(pass, gate, operands, {
          gradOutput,
          gradInput,
          gradInputAdd: withAdd ? gradInputAdd : undefined,
          gradQd: gradQd ? { region: gradQd, accumulate } : undefined,
          gradWeight,
          gradBias,
        }, rows),
      );
      const what = `${chain}, ${variant}`;
      if (gradQd) {
        if (!dQd) throw new Error('a chain with add(Qd) has a ∂Qd');
        const expected = accumulate
          ? { value: dQd.value.map((v, i) => v + p.prefill[i]), err: dQd.err.map((e, i) => e + U * (Math.abs(dQd.value[i]) + Math.abs(p.prefill[i]))) }
          : dQd;
        expectWithin(await engine.readBuffer(gradQd, size * 4), expected, `${what}: ∂Qd`);
      }
      if (gradWeight) expectWithin(await engine.readBuffer(gradWeight, k * n * 4), bounded(exact.dW, rows, rounding.dW, propagated.dW), `${what}: ∂weight`);
      if (gradBias) expectWithin(await engine.readBuffer(gradBias, n * 4), bounded(exact.db, rows, rounding.db, propagated.db), `${what}: ∂bias`);
      if (gradInput) {
        const value = withAdd ? exact.dx.map((v, i) => v + p.add[i]) : exact.dx;
        const sums = withAdd ? rounding.dx.map((s, i) => s + Math.abs(p.add[i])) : rounding.dx;
        expectWithin(await engine.readBuffer(gradInput, rows * k * 4), bounded(value, n + 1, sums, propagated.dx), `${what}: ∂x`);
      }
    }
    // The case is not vacuous: the dropout chains drop and keep, and δ is far from zero.
    expect(factors.some((v) => v === 0) && factors.some((v) => v > 1)).toBe(true);
    expect(CHAIN_NAMES.filter((chain) => !shape.chains || shape.chains.includes(chain)).length).toBeGreaterThan(0);
    buffers.dispose();
  });

  it('the bounds catch a wrong answer: one changed element of a forward fails', () => {
    const p = makeProblem(5, 3, 70, 67);
    const states = refForward(p, CHAINS['add-qd→tanh'], new Float64Array(3 * 67));
    const out = states[2];
    const wrong = Float32Array.from(out.value);
    wrong[100] += 1e-3;
    expect(worstRatio(Float32Array.from(out.value), out)).toBeLessThanOrEqual(1);
    expect(worstRatio(wrong, out)).toBeGreaterThan(1);
  });
});

/** The raw bits of a buffer (NaN-safe, −0 ≠ +0). */
const bits = async (buffer: GPUBuffer, size: number): Promise<number[]> => Array.from(new Uint32Array((await engine.readBuffer(buffer, size * 4)).buffer));

describe('dense-product library: dropout in inference mode', () => {
  it.each(['tiled', 'split-k', 'matmul'] as const)('%s: with the open gate, add-qd→tanh→dropout gives the bits of add-qd→tanh (forward, ∂Qd, ∂weight, ∂bias, ∂x)', async (choice) => {
    const shape: Shape = { choice, rows: 3, k: 70, n: 67, forward: choice === 'matmul' ? 'tiled' : choice === 'split-k' ? 'split' : 'rows' };
    const { rows, k, n } = shape;
    const p = makeProblem(7, rows, k, n);
    const buffers = new Buffers(engine);
    const operands = { x: buffers.upload(p.x), weight: buffers.upload(p.ref.W), bias: buffers.upload(p.ref.b), qd: buffers.upload(p.qd) };
    const gradOutput = buffers.upload(p.g);
    const outputs: number[][][] = [];
    for (const chain of ['add-qd→tanh→dropout', 'add-qd→tanh']) {
      const dense = await kernelsFor(shape, chain);
      expect(dense.plan(rows).forward).toBe(shape.forward);
      const [y, dqd, dw, db, dx] = [rows * n, rows * n, k * n, n, rows * k].map((size) => buffers.junk(size));
      submit(engine, (pass) => {
        dense.encodeForward(pass, engine.openGate(), operands, y, rows);
        dense.encodeAdjoint(pass, engine.openGate(), operands, { gradOutput, gradQd: { region: dqd, accumulate: false }, gradWeight: dw, gradBias: db, gradInput: dx }, rows);
      });
      outputs.push([await bits(y, rows * n), await bits(dqd, rows * n), await bits(dw, k * n), await bits(db, n), await bits(dx, rows * k)]);
    }
    expect(outputs[0]).toEqual(outputs[1]);
    buffers.dispose();
  });
});

describe('dense-product library: deterministic reduction order', () => {

  it.each([
    ['tiled', 256, 70, 67],
    ['matmul', 256, 70, 67],
    ['split-k', 3, 150, 67],
  ] as const)('%s, rows %i, k %i, n %i: two runs of ∂weight/∂bias and of the forward are bit-identical', async (choice, rows, k, n) => {
    const shape: Shape = { choice, rows, k, n, forward: choice === 'split-k' ? 'split' : choice === 'matmul' ? 'tiled' : 'rows' };
    const dense = await kernelsFor(shape, 'add-qd→tanh→dropout');
    expect(dense.plan(rows).forward).toBe(shape.forward);
    if (choice === 'split-k') expect(dense.plan(rows).splits).toBeGreaterThan(2);
    const p = makeProblem(99, rows, k, n);
    const buffers = new Buffers(engine);
    const gate = gateBuffer(engine, [0, EVAL, KEY, 1]);
    const operands = { x: buffers.upload(p.x), weight: buffers.upload(p.ref.W), bias: buffers.upload(p.ref.b), qd: buffers.upload(p.qd) };
    const gradOutput = buffers.upload(p.g);
    const runs: number[][][] = [];
    for (let run = 0; run < 2; run++) {
      const y = buffers.junk(rows * n);
      const dw = buffers.junk(k * n);
      const db = buffers.junk(n);
      submit(engine, (pass) => {
        dense.encodeForward(pass, gate, operands, y, rows);
        dense.encodeAdjoint(pass, gate, operands, { gradOutput, gradWeight: dw, gradBias: db }, rows);
      });
      runs.push([await bits(y, rows * n), await bits(dw, k * n), await bits(db, n)]);
    }
    expect(runs[1]).toEqual(runs[0]);
    // Not vacuous: the outputs were written (no 7 left) and are not all zero.
    const seven = new Uint32Array(Float32Array.of(7).buffer)[0];
    for (const output of runs[0]) expect(output.some((b) => b === seven) || output.every((b) => b === 0)).toBe(false);
    buffers.dispose();
  });
});

describe('dense-product library: the plans of a GPU', () => {
  // Plans only (no kernel compiles): DenseKernels planning as on a GPU adapter, with this device's limits.
  const gpuKernels = (d: number, choice: ForwardKernelChoice = 'auto') => new DenseKernels(engine, d, d, { ops: ['add-qd', 'tanh'], dropout: NO_DROPOUT }, choice, 'rows', 'plan test', true, { adapter: 'gpu' });

  it.each([1024, 1536, 2048, 4096])('d = %i, batch 1: vec4 loads and split-k with at least 128 workgroups, chunks of at least MIN_CHUNK', (d) => {
    const dense = gpuKernels(d);
    const plan = dense.plan(1);
    expect(plan.forward).toBe('split');
    expect(plan.vector).toBe(true);
    const groups = dense.forwardGroups(1);
    expect(groups).toBeGreaterThanOrEqual(128);
    expect(groups).toBeLessThanOrEqual(2 * SPLIT_TARGET_GROUPS);
    // Workgroups of the first pass: 4 · 64 columns each, one block of 4 rows, one slice of k each.
    expect(groups).toBe(Math.ceil(d / 256) * plan.splits);
    expect(Math.ceil(d / plan.splits)).toBeGreaterThanOrEqual(MIN_CHUNK);
    dense.dispose();
  });

  it('without split-k (linear alone), vec4 loads only where they leave 128 workgroups', () => {
    const linear = (d: number) => new DenseKernels(engine, d, d, NO_EPILOGUE, 'auto', 'rows', 'plan test', false, { adapter: 'gpu' });
    const small = linear(4096);
    expect(small.plan(1)).toMatchObject({ forward: 'rows', vector: false, splits: 1 });
    expect(small.forwardGroups(1)).toBe(64);
    // 7 blocks of 4 rows × 16 vec4 column groups = 112 workgroups; 8 blocks = 128.
    expect(small.plan(28)).toMatchObject({ forward: 'rows', vector: false });
    expect(small.plan(29)).toMatchObject({ forward: 'rows', vector: true });
    expect(small.forwardGroups(29)).toBe(128);
    small.dispose();
    const wide = linear(32768);
    expect(wide.plan(1)).toMatchObject({ forward: 'rows', vector: true });
    expect(wide.forwardGroups(1)).toBe(128);
    wide.dispose();
  });

  it('a CPU adapter takes the few-row product with vec4 loads (n a multiple of 4) without split-k, whatever the size', () => {
    const cpuKernels = (n: number) => new DenseKernels(engine, 4096, n, { ops: [], dropout: NO_DROPOUT }, 'auto', 'rows', 'plan test', true, { adapter: 'cpu' });
    const dense = cpuKernels(4096);
    // One row: the one-row body, 16 columns of 16 threads per workgroup (lib/gemm_row.wgsl).
    expect(dense.plan(1)).toMatchObject({ forward: 'row', vector: true, splits: 1, adjointTiled: false });
    expect(dense.forwardGroups(1)).toBe(16);
    expect(dense.plan(2)).toMatchObject({ forward: 'rows', vector: true, splits: 1 });
    expect(dense.plan(64)).toMatchObject({ forward: 'rows', vector: true, splits: 1 });
    // 4 · 64 columns per workgroup: 16 workgroups (a GPU would split k or keep the scalar kernel's 64).
    expect(dense.forwardGroups(2)).toBe(16);
    const odd = cpuKernels(4094);
    expect(odd.plan(1)).toMatchObject({ forward: 'rows', vector: false, splits: 1 });
    expect(odd.forwardGroups(1)).toBe(64);
    odd.dispose();
    // One tiling, the one it always had (for forwardKernel 'matmul').
    expect(dense.tileShapes.map((s) => [s.edge, s.per])).toEqual([[64, 4]]);
    dense.dispose();
  });

  it('tile shapes: 64 × 64 tiles where they give TILED_TARGET_GROUPS workgroups, 32 × 32 where they would not, 128 × 128 (8 × 8 per thread) for the largest', () => {
    const shapes = tileShapes(gemmTiles(engine.device.limits), engine.device.limits);
    expect(shapes.map((s) => [s.edge, s.per, s.side])).toEqual([[128, 8, 16], [64, 4, 16], [32, 4, 8]]);
    const edge = (m: number, n: number) => chooseTile(shapes, m, n).edge;
    // d = 1024, batch 256: only 64 tiles of 64 × 64 for 132 multiprocessors; 256 of 32 × 32.
    expect(edge(256, 1024)).toBe(32);
    expect(edge(1024, 1024)).toBe(64);
    expect(edge(2048, 1024)).toBe(64);
    // d = 4096, batch 1024: 256 tiles of 128 × 128.
    expect(edge(1024, 4096)).toBe(128);
    expect(edge(4096, 4096)).toBe(128);
    // Too small for any target: the smallest tiles, the most workgroups.
    expect(edge(40, 67)).toBe(32);
    for (const [m, n] of [[256, 1024], [1024, 4096], [2048, 2048]] as const) {
      expect(Math.ceil(m / edge(m, n)) * Math.ceil(n / edge(m, n))).toBeGreaterThanOrEqual(TILED_TARGET_GROUPS);
    }
    const dense = gpuKernels(1024);
    const plan = dense.plan(256);
    expect(plan.forward).toBe('tiled');
    expect([plan.tiles.forward.edge, plan.tiles.weight.edge, plan.tiles.input.edge]).toEqual([32, 64, 32]);
    expect(dense.forwardGroups(256)).toBe(256);
    dense.dispose();
    const large = gpuKernels(4096);
    expect(large.plan(1024).tiles.forward).toMatchObject({ edge: 128, per: 8 });
    expect(large.forwardGroups(1024)).toBe(256);
    large.dispose();
  });

  it('a device with little workgroup memory gets tilings that fit it', () => {
    const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupStorageSize: 4096 } as unknown as GPUSupportedLimits;
    const shapes = tileShapes(gemmTiles(limits), limits);
    expect(shapes.map((s) => [s.edge, s.per, s.side])).toEqual([[64, 8, 8], [32, 4, 8]]);
    for (const s of shapes) expect(2 * s.step * s.edge * 4).toBeLessThanOrEqual(4096);
  });
});

describe('dense-product library: the same bits whatever the kernel', () => {
  // Each output sums k in increasing order, one value at a time, in every few-row kernel (scalar
  // or vec4 loads) and in every register tiling: the forward's bits must not depend on which ran.
  it.each([
    ['few rows, scalar vs vec4 loads', 'tiled', 512, 70, 132, [{ vector: false }, {}]],
    ['one row: the scalar few-row body vs the one-row body (this CPU adapter)', 'tiled', 1, 200, 132, [{ vector: false }, {}]],
    ['split-k, scalar vs vec4 loads', 'split-k', 3, 300, 68, [{ vector: false }, {}]],
    ['tilings 32, 64, 128', 'matmul', 40, 70, 132, [{ tileEdge: 32 }, { tileEdge: 64 }, { tileEdge: 128 }]],
  ] as const)('%s', async (_what, choice, rows, k, n, variants) => {
    const p = makeProblem(31, rows, k, n);
    const buffers = new Buffers(engine);
    const operands = { x: buffers.upload(p.x), weight: buffers.upload(p.ref.W), bias: buffers.upload(p.ref.b), qd: buffers.upload(p.qd) };
    const outputs: number[][] = [];
    const used = new Set<string>();
    for (const overrides of variants) {
      const dense = await kernelsFor({ choice, rows, k, n, forward: 'rows', overrides }, 'add-qd→tanh');
      const plan = dense.plan(rows);
      used.add(`${plan.forward}/${plan.vector && plan.forward !== 'tiled'}/${plan.forward === 'tiled' ? plan.tiles.forward.edge : plan.splits}`);
      const y = buffers.junk(rows * n);
      submit(engine, (pass) => dense.encodeForward(pass, engine.openGate(), operands, y, rows));
      outputs.push(await bits(y, rows * n));
    }
    // The variants ran different kernels, and every one the same bits.
    expect(used.size).toBe(variants.length);
    for (const output of outputs.slice(1)) expect(output).toEqual(outputs[0]);
    buffers.dispose();
  });
});

describe('dense-product library: tile sizes chosen per device', () => {
  const limits = (over: Partial<Record<string, number>>) =>
    ({ maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupStorageSize: 16384, ...over }) as unknown as GPUSupportedLimits;

  it('the default limits of WebGPU get the library sizes; smaller limits get smaller tiles', () => {
    expect(gemmTiles(limits({}))).toEqual({ cols: 64, side: 16, step: 16 });
    expect(gemmTiles(limits({ maxComputeInvocationsPerWorkgroup: 128 }))).toEqual({ cols: 64, side: 8, step: 16 });
    expect(gemmTiles(limits({ maxComputeWorkgroupSizeX: 32 }))).toEqual({ cols: 32, side: 16, step: 16 });
    expect(gemmTiles(limits({ maxComputeWorkgroupSizeY: 8 }))).toEqual({ cols: 64, side: 8, step: 16 });
    expect(gemmTiles(limits({ maxComputeWorkgroupStorageSize: 4096 }))).toEqual({ cols: 64, side: 8, step: 8 });
  });

  it("this engine's kernels use the tiles of its device", () => {
    const dense = new DenseKernels(engine, 5, 7, { ops: [], dropout: NO_DROPOUT }, 'auto', 'rows', 'test');
    expect(dense.tiles).toEqual(gemmTiles(engine.device.limits));
    dense.dispose();
  });
});
