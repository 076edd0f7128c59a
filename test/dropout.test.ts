// Stochastic tanh blocks (dropout): masks against the CPU generator (bit-exact), the drop rate,
// per-iteration vs per-solve noise, determinism per key, inference mode, the adjoint's mask, and
// the evaluation index that every solver gives each evaluation of f.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  anderson,
  broyden,
  jfb,
  ift,
  OptionError,
  picard,
  type Engine,
  type ForwardIO,
  type ImplicitLayer,
  type Solver,
  type SolverOptions,
  type TanhBlock,
  type TanhBlockParams,
  type Tensor,
  implicitBlock,
} from '../src';
import type { Kernel } from '../src/gpu/kernel';
import { BufferUsage } from '../src/gpu/flags';
import { refBlockForward, refBlockVjp, refDropoutBlockForward, refDropoutMask, type RefBlock, type RefDropout } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';

let engine: Engine;

beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

/** A contractive random block of width d, its float64 twin, Qd and a starting point. */
interface Problem {
  params: TanhBlockParams & { weight: Float32Array; bias: Float32Array };
  ref: RefBlock;
  qd: Float32Array;
  u0: Float32Array;
  shape: number[];
}

function problem(d: number, batch: number, seed: number): Problem {
  const random = rng(seed);
  const w = Float32Array.from(randomArray(random, d * d, 0.9 / Math.sqrt(d)));
  const b = Float32Array.from(randomArray(random, d, 0.2));
  const qd = Float32Array.from(randomArray(random, batch * d, 1));
  const u0 = Float32Array.from(randomArray(random, batch * d, 1));
  return { params: { weight: w, bias: b }, ref: { d, w: Float64Array.from(w), b: Float64Array.from(b) }, qd, u0, shape: [batch, d] };
}

const P = problem(32, 8, 11);

function block(p: Problem, dropout?: TanhBlockParams['dropout']): TanhBlock {
  return implicitBlock(engine, { ...p.params, dropout });
}

/** `depth` Picard steps from u0, returning the last iterate: f applied `depth` times, evaluations 0 … depth − 1. */
async function picardSteps(f: TanhBlock, p: Problem, depth: number, options: SolverOptions = {}): Promise<Float32Array> {
  const Qd = engine.tensor(p.qd, p.shape);
  const u0 = engine.tensor(p.u0, p.shape);
  const result = await picard(f, Qd, { u0, maxDepth: depth, eps: 0, returnFinal: true, ...options });
  const u = await result.uStar.read();
  result.dispose();
  Qd.dispose();
  u0.dispose();
  return u;
}

function zeroMask(values: ArrayLike<number>): Uint8Array {
  return Uint8Array.from(values, (v) => (v === 0 ? 0 : 1));
}

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Number of differing entries of two masks. */
function hamming(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i] === b[i] ? 0 : 1;
  return n;
}

describe('dropout options', () => {
  it('accepts a rate or { rate, noise } and rejects bad values naming the option', () => {
    expect(block(P, 0.2).dropout).toEqual({ rate: 0.2, noise: 'per-iteration' });
    expect(block(P, { rate: 0.3, noise: 'per-solve' }).dropout).toEqual({ rate: 0.3, noise: 'per-solve' });
    expect(block(P).dropout).toBeNull();
    const cases: [unknown, string][] = [
      [1, 'dropout.rate'],
      [-0.1, 'dropout.rate'],
      [Number.NaN, 'dropout.rate'],
      [{ rate: 0.2, noise: 'per-step' }, 'dropout.noise'],
      [{ rate: 0.2, seed: 1 }, 'dropout.seed'],
      ['0.2', 'dropout'],
    ];
    for (const [dropout, argument] of cases) {
      let caught: unknown;
      try {
        block(P, dropout as TanhBlockParams['dropout']);
      } catch (err) {
        caught = err;
      }
      expect(caught, String(dropout)).toBeInstanceOf(OptionError);
      expect((caught as OptionError).argument).toBe(argument);
    }
  });
});

describe('dropout masks', () => {
  const dropout: RefDropout = { rate: 0.25, noise: 'per-iteration' };

  it('one evaluation equals the CPU forward with the CPU mask (mask bit-exact)', async () => {
    const key = 7;
    const u1 = await picardSteps(block(P, dropout), P, 1, { key });
    const expected = refDropoutBlockForward(P.ref, dropout, key, 0, Float64Array.from(P.u0), Float64Array.from(P.qd));
    const mask = refDropoutMask(dropout, key, 0, u1.length);
    expect(zeroMask(u1)).toEqual(mask);
    expect(mask.includes(0)).toBe(true);
    expect(maxAbsDiff(u1, expected)).toBeLessThan(2e-5);
  });

  it.each([0.1, 0.5])('drops a fraction within the binomial bound of rate %s (4096 elements)', async (rate) => {
    const big = problem(64, 64, 5);
    const u1 = await picardSteps(block(big, rate), big, 1, { key: 99 });
    const n = u1.length;
    const dropped = u1.reduce((s, v) => s + (v === 0 ? 1 : 0), 0);
    const sigma = Math.sqrt(n * rate * (1 - rate));
    expect(Math.abs(dropped - n * rate)).toBeLessThan(4.5 * sigma);
    // Kept elements are scaled by 1 / (1 − rate): compare with the unmasked forward.
    const y = refBlockForward(big.ref, Float64Array.from(big.u0), Float64Array.from(big.qd));
    const kept = Array.from(u1.keys()).filter((i) => u1[i] !== 0);
    expect(Math.max(...kept.map((i) => Math.abs(u1[i] - y[i] / (1 - rate))))).toBeLessThan(2e-5);
  });

  it('per-iteration: the second evaluation draws a new mask (evaluation index 1)', async () => {
    const key = 21;
    const f = block(P, dropout);
    const u1 = await picardSteps(f, P, 1, { key });
    const u2 = await picardSteps(f, P, 2, { key });
    const mask0 = refDropoutMask(dropout, key, 0, u1.length);
    const mask1 = refDropoutMask(dropout, key, 1, u1.length);
    expect(zeroMask(u1)).toEqual(mask0);
    expect(zeroMask(u2)).toEqual(mask1);
    expect(hamming(mask0, mask1)).toBeGreaterThan(20);
    const expected = refDropoutBlockForward(P.ref, dropout, key, 1, Float64Array.from(u1), Float64Array.from(P.qd));
    expect(maxAbsDiff(u2, expected)).toBeLessThan(2e-5);
  });

  it('per-solve: every evaluation of a solve uses the same mask', async () => {
    const key = 21;
    const perSolve: RefDropout = { rate: 0.25, noise: 'per-solve' };
    const f = block(P, perSolve);
    const u1 = await picardSteps(f, P, 1, { key });
    const u3 = await picardSteps(f, P, 3, { key });
    const mask = refDropoutMask(perSolve, key, 0, u1.length);
    expect(zeroMask(u1)).toEqual(mask);
    expect(zeroMask(u3)).toEqual(mask);
    // A different key gives a different (fixed) mask.
    const other = await picardSteps(f, P, 1, { key: key + 1 });
    expect(hamming(zeroMask(other), mask)).toBeGreaterThan(20);
  });

  it('per-solve noise is a fixed map the solvers converge on; per-iteration noise is not', async () => {
    const Qd = engine.tensor(P.qd, P.shape);
    const key = 5;
    const perSolve: RefDropout = { rate: 0.3, noise: 'per-solve' };
    const fixed = await anderson(block(P, perSolve), Qd, { key, eps: 1e-5, maxDepth: 60 });
    expect(fixed.stats.converged).toBe(true);
    const u = await fixed.uStar.read();
    const fu = refDropoutBlockForward(P.ref, perSolve, key, 0, Float64Array.from(u), Float64Array.from(P.qd));
    expect(maxAbsDiff(u, fu)).toBeLessThan(1e-4);
    const noisy = await anderson(block(P, { rate: 0.3, noise: 'per-iteration' }), Qd, { key, eps: 1e-5, maxDepth: 20 });
    expect(noisy.stats.converged).toBe(false);
    expect(noisy.stats.absResidual).toBeGreaterThan(1e-2);
    fixed.dispose();
    noisy.dispose();
    Qd.dispose();
  });
});

describe('dropout determinism and inference mode', () => {
  const runs: [string, Solver, SolverOptions][] = [
    ['anderson', anderson, { eps: 0, maxDepth: 6 }],
    ['broyden with line search', broyden, { eps: 0, maxDepth: 6, ls: true }],
  ];

  it.each(runs)('%s: the same key reproduces uStar bit for bit, another key does not', async (_name, solve, options) => {
    const Qd = engine.tensor(P.qd, P.shape);
    const f = block(P, 0.3);
    const read = async (key: number) => {
      const result = await solve(f, Qd, { ...options, key });
      const u = await result.uStar.read();
      result.dispose();
      return u;
    };
    const a = await read(1234);
    const b = await read(1234);
    const c = await read(1235);
    expect(bits(a)).toEqual(bits(b));
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
    Qd.dispose();
  });

  it.each(runs)('%s: inference: true gives exactly the deterministic block', async (_name, solve, options) => {
    const Qd = engine.tensor(P.qd, P.shape);
    // The plain block on the path a dropout block takes (the layer's kernels, fused: false): a
    // fused path sums the Gram row and residuals in another order, so Anderson's α may round differently.
    const plain = await solve(block(P), Qd, { ...options, fused: false });
    const inferred = await solve(block(P, { rate: 0.4, noise: 'per-iteration' }), Qd, { ...options, key: 3, inference: true });
    const training = await solve(block(P, { rate: 0.4, noise: 'per-iteration' }), Qd, { ...options, key: 3 });
    expect(bits(await inferred.uStar.read())).toEqual(bits(await plain.uStar.read()));
    expect(bits(await inferred.uPrev.read())).toEqual(bits(await plain.uPrev.read()));
    expect(inferred.tnstep).toBe(plain.tnstep);
    expect(maxAbsDiff(await training.uStar.read(), await plain.uStar.read())).toBeGreaterThan(1e-3);
    for (const r of [plain, inferred, training]) r.dispose();
    Qd.dispose();
  });
});

describe('dropout in the adjoint and in backprop', () => {
  const dropout: RefDropout = { rate: 0.3, noise: 'per-iteration' };

  /** A gate of evaluation `evalIndex` in training mode (the words a solve's control block holds). */
  function trainingGate(evalIndex: number, key: number): GPUBuffer {
    const buffer = engine.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST });
    engine.device.queue.writeBuffer(buffer, 0, Uint32Array.from([0, evalIndex, key, 1]));
    return buffer;
  }

  it("the adjoint applies the mask of the forward evaluation its gate names", async () => {
    const f = block(P, dropout);
    const batch = P.shape[0];
    await f.prepare(batch);
    const random = rng(77);
    const g = Float32Array.from(randomArray(random, P.u0.length, 1));
    const u = engine.tensor(P.u0, P.shape);
    const Qd = engine.tensor(P.qd, P.shape);
    const gOut = engine.tensor(g, P.shape);
    const out = engine.tensor(new Float32Array(P.u0.length), P.shape);
    const gradQd = engine.tensor(new Float32Array(P.u0.length), P.shape);
    const key = 8;
    const evalIndex = 4;
    const gate = trainingGate(evalIndex, key);
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    f.encodeForward(pass, { input: u.buffer, output: out.buffer, Qd: Qd.buffer, gate }, batch);
    f.encodeAdjoint(pass, { input: u.buffer, Qd: Qd.buffer, gradOutput: gOut.buffer, gradQd: gradQd.buffer, gate }, batch);
    pass.end();
    engine.device.queue.submit([encoder.finish()]);
    const mask = refDropoutMask(dropout, key, evalIndex, P.u0.length);
    const y = await out.read();
    const delta = await gradQd.read();
    expect(zeroMask(y)).toEqual(mask);
    expect(zeroMask(delta)).toEqual(mask);
    // δ = ḡ ⊙ mask / (1 − rate) ⊙ (1 − tanh(z)²), checked against the unmasked CPU VJP.
    const vjp = refBlockVjp(P.ref, Float64Array.from(P.u0), Float64Array.from(P.qd), Float64Array.from(g));
    const expected = vjp.Qd.map((v, i) => (mask[i] ? v / (1 - dropout.rate) : 0));
    expect(maxAbsDiff(delta, expected)).toBeLessThan(2e-5);
    gate.destroy();
    for (const t of [u, Qd, gOut, out, gradQd]) t.dispose();
  });

  it('JFB recomputes uStar and differentiates without a mask (inference mode)', async () => {
    const Qd = engine.tensor(P.qd, P.shape);
    const f = block(P, dropout);
    const out = await jfb(f, Qd, { solver: picard, key: 2, maxDepth: 5, eps: 0 });
    const uPrev = Float64Array.from(await out.uPrev.read());
    const uStar = await out.uStar.read();
    expect(zeroMask(uStar).includes(0)).toBe(false);
    expect(maxAbsDiff(uStar, refBlockForward(P.ref, uPrev, Float64Array.from(P.qd)))).toBeLessThan(2e-5);
    const g = Float32Array.from(randomArray(rng(3), P.u0.length, 1));
    const grads = await out.backward(engine.tensor(g, P.shape));
    const vjp = refBlockVjp(P.ref, uPrev, Float64Array.from(P.qd), Float64Array.from(g));
    expect(maxAbsDiff(await grads.Qd.read(), vjp.Qd)).toBeLessThan(2e-5);
    out.dispose();
    Qd.dispose();
  });

  it('IFT solves its adjoint system in inference mode (it converges despite per-iteration noise)', async () => {
    const Qd = engine.tensor(P.qd, P.shape);
    const out = await ift(block(P, dropout), Qd, { solver: anderson, key: 4, maxDepth: 10 });
    await out.backward(engine.tensor(Float32Array.from(randomArray(rng(4), P.u0.length, 1)), P.shape));
    expect(out.backwardStats?.converged).toBe(true);
    out.dispose();
    Qd.dispose();
  });
});

// A probe layer: f(u) = a·u + Qd elementwise, and each evaluation that runs records the gate
// words it saw at log[3·index …] = (times seen, key, noise flag).
const PROBE_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> gate: array<u32>;
struct ProbeParams { n: u32, a: f32 }
@group(0) @binding(1) var<uniform> params: ProbeParams;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> qd: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> log: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (gate[0] != 0u) { return; }
  let i = id.x;
  if (i < params.n) { out[i] = params.a * u[i] + qd[i]; }
  if (i == 0u) {
    let k = min(gate[1], arrayLength(&log) / 3u - 1u);
    log[3u * k] += 1u;
    log[3u * k + 1u] = gate[2];
    log[3u * k + 2u] = gate[3];
  }
}
`;

const LOG_ENTRIES = 128;

class ProbeLayer implements ImplicitLayer {
  readonly params = {};
  readonly log: GPUBuffer;
  private kernel?: Kernel;
  constructor(
    readonly engine: Engine,
    readonly featureSize: number,
    private readonly a: number,
  ) {
    this.log = engine.device.createBuffer({ size: 12 * LOG_ENTRIES, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST });
  }
  async prepare(): Promise<void> {
    this.kernel ??= await this.engine.kernel('test.dropout-probe', PROBE_WGSL);
  }
  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    const kernel = this.kernel;
    if (!kernel) throw new Error('prepare() first');
    const n = batch * this.featureSize;
    const params = this.engine.params(kernel, { n, a: this.a });
    kernel.dispatch(pass, kernel.bind({ gate: io.gate, params, u: io.input, qd: io.Qd, out: io.output, log: this.log }), Math.ceil(n / 64));
  }
  encodeAdjoint(): void {
    throw new Error('the probe has no adjoint');
  }
  async entries(): Promise<{ count: number; key: number; noise: number }[]> {
    const words = new Uint32Array(await this.engine.readBytes(this.log, 12 * LOG_ENTRIES));
    return Array.from({ length: LOG_ENTRIES }, (_, k) => ({ count: words[3 * k], key: words[3 * k + 1], noise: words[3 * k + 2] }));
  }
}

describe('evaluation index', () => {
  const cases: [string, Solver, number, SolverOptions, (r: { tnstep: number; stats: { nstep: number } }) => number][] = [
    // Picard's first evaluation serves both the initial residual and the first iteration.
    ['picard', picard, 0.5, { maxDepth: 7 }, (r) => r.stats.nstep],
    // Anderson evaluates f(u0) and f(u1) before its loop, then once per iteration.
    ['anderson', anderson, 0.5, { maxDepth: 7 }, (r) => r.stats.nstep + 1],
    // Broyden's tnstep leaves out its first evaluation; with ls it counts the trials too.
    ['broyden', broyden, 0.5, { maxDepth: 7 }, (r) => r.tnstep + 1],
    ['broyden with line search', broyden, 1.5, { maxDepth: 4, ls: true }, (r) => r.tnstep + 1],
  ];

  it.each(cases)('%s: every evaluation sees its own index 0, 1, 2, … and the key', async (name, solve, a, options, evaluations) => {
    const d = 16;
    const probe = new ProbeLayer(engine, d, a);
    const Qd = engine.tensor(Float32Array.from(randomArray(rng(1), 2 * d, 1)), [2, d]);
    const result = await solve(probe, Qd, { eps: 0, key: 0xdeadbeef, ...options });
    const log = await probe.entries();
    const count = evaluations(result);
    expect(result.stats.nonFinite).toBe(false);
    expect(count).toBeGreaterThanOrEqual(options.maxDepth ?? 0);
    if (name === 'broyden with line search') expect(result.tnstep).toBeGreaterThan(result.stats.nstep); // trials did run
    expect(log.slice(0, count).map((e) => e.count)).toEqual(new Array<number>(count).fill(1));
    expect(log.slice(count).every((e) => e.count === 0)).toBe(true);
    expect(log.slice(0, count).every((e) => e.key === 0xdeadbeef && e.noise === 1)).toBe(true);
    result.dispose();
    Qd.dispose();
    probe.log.destroy();
  });

  it('inference: true clears the noise flag for every evaluation', async () => {
    const probe = new ProbeLayer(engine, 16, 0.5);
    const Qd = engine.tensor(new Float32Array(16).fill(0.5), [16]);
    const result = await anderson(probe, Qd, { eps: 0, maxDepth: 4, key: 9, inference: true });
    const seen = (await probe.entries()).filter((e) => e.count > 0);
    expect(seen.length).toBe(result.stats.nstep + 1);
    expect(seen.every((e) => e.noise === 0 && e.key === 9)).toBe(true);
    result.dispose();
    Qd.dispose();
    probe.log.destroy();
  });
});
