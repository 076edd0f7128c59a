// Running one forward or adjoint of an ImplicitLayer outside a solve, for the layer tests.
import { expect } from 'vitest';
import { broyden, type AnchoraxError, type Engine, type ImplicitLayer, type Solver, type SolverOptions, type Tensor } from '../../src';
import { refBroyden, refLinearForward, refLinearVjp, type RefLinear, type RefStage } from '../../src/reference';

/** A gate buffer with the given words [skip, evaluation index, key, noise on]. */
export function gateBuffer(engine: Engine, words: [number, number, number, number]): GPUBuffer {
  const buffer = engine.allocate(16, 'gate');
  engine.device.queue.writeBuffer(buffer, 0, Uint32Array.from(words));
  return buffer;
}

function upload(engine: Engine, values: ArrayLike<number>): GPUBuffer {
  return engine.tensor(Float32Array.from(values), [values.length]).buffer;
}

/** Encodes into one compute pass and submits. */
export function submit(engine: Engine, encode: (pass: GPUComputePassEncoder) => void): void {
  const encoder = engine.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  encode(pass);
  pass.end();
  engine.device.queue.submit([encoder.finish()]);
}

/**
 * Dispatches per iteration of `solver` on `f` (engine.counters): the difference of two fixed-work
 * solves (eps = 0, 8 and 16 iterations, chunks of 4).
 */
export async function dispatchesPerIteration(solver: Solver, f: ImplicitLayer, q: Tensor, options: SolverOptions = {}): Promise<number> {
  const count = async (maxDepth: number): Promise<number> => {
    const before = f.engine.counters.dispatches;
    const r = await solver(f, q, { eps: 0, maxDepth, checkEvery: 4, ...options });
    await r.uStar.read();
    r.dispose();
    return f.engine.counters.dispatches - before;
  };
  const short = await count(8);
  return ((await count(16)) - short) / 8;
}

/**
 * Broyden on a layer's fused path against the generic one (`fused: false`) and the float64
 * reference `refMap`: tnstep, status, the fixed point and the trace, for a converging solve and a
 * short relative one with one iteration per chunk.
 */
export async function expectBroydenAgrees(f: ImplicitLayer, q: Tensor, qd: Float32Array, refMap: (qd: Float64Array) => (u: Float64Array) => Float64Array): Promise<void> {
  for (const options of [{ eps: 1e-5, maxDepth: 40 }, { eps: 1e-4, maxDepth: 9, lbfgsThres: 3, stopMode: 'rel' as const, returnFinal: true, checkEvery: 1 }]) {
    const run = async (fused: boolean) => {
      const r = await broyden(f, q, { trace: true, ...options, fused });
      const out = { u: Array.from(await r.uStar.read()), tnstep: r.tnstep, stats: r.stats };
      r.dispose();
      return out;
    };
    const fused = await run(true);
    const generic = await run(false);
    const reference = refBroyden(refMap(Float64Array.from(qd)), new Float64Array(qd.length), { stopMode: 'abs', returnFinal: false, ...options });
    expect(fused.tnstep).toBe(generic.tnstep);
    expect(fused.tnstep).toBe(reference.tnstep);
    expect(fused.stats.status).toBe(generic.stats.status);
    fused.u.forEach((v, i) => {
      expect(Math.abs(v - generic.u[i])).toBeLessThan(1e-5);
      expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-4);
    });
    fused.stats.trace?.abs.forEach((a, i) => expect(Math.abs(a - reference.trace.abs[i])).toBeLessThan(1e-2 * reference.trace.abs[i] + 1e-5));
  }
}

/** f(u, Qd) for `batch` rows, read back. */
export async function layerForward(layer: ImplicitLayer, u: ArrayLike<number>, qd: ArrayLike<number>, batch: number, gate?: GPUBuffer): Promise<Float32Array> {
  const { engine } = layer;
  await layer.prepare(batch);
  const output = upload(engine, new Float32Array(u.length).fill(7)); // junk the layer must overwrite
  submit(engine, (pass) =>
    layer.encodeForward(pass, { input: upload(engine, u), output, Qd: upload(engine, qd), gate: gate ?? engine.openGate() }, batch),
  );
  return engine.readBuffer(output, u.length * 4);
}

export interface LayerGrads {
  du: Float32Array;
  dQd: Float32Array;
  dParams: Record<string, Float32Array>;
}

/** The VJP with cotangent g (and `gradInputAdd` when given), every output asked for, read back. */
export async function layerAdjoint(
  layer: ImplicitLayer,
  u: ArrayLike<number>,
  qd: ArrayLike<number>,
  g: ArrayLike<number>,
  batch: number,
  options: { gate?: GPUBuffer; add?: ArrayLike<number> } = {},
): Promise<LayerGrads> {
  const { engine } = layer;
  await layer.prepare(batch);
  const junk = (n: number) => upload(engine, new Float32Array(n).fill(7));
  const gradInput = junk(u.length);
  const gradQd = junk(u.length);
  const gradParams: Record<string, GPUBuffer> = {};
  for (const [name, p] of Object.entries(layer.params)) gradParams[name] = junk(p.size);
  submit(engine, (pass) =>
    layer.encodeAdjoint(pass, {
      input: upload(engine, u),
      Qd: upload(engine, qd),
      gradOutput: upload(engine, g),
      gradInput,
      gradInputAdd: options.add ? upload(engine, options.add) : undefined,
      gradQd,
      gradParams,
      gate: options.gate ?? engine.openGate(),
    }, batch),
  );
  const dParams: Record<string, Float32Array> = {};
  for (const [name, p] of Object.entries(layer.params)) dParams[name] = await engine.readBuffer(gradParams[name], p.size * 4);
  return { du: await engine.readBuffer(gradInput, u.length * 4), dQd: await engine.readBuffer(gradQd, u.length * 4), dParams };
}

/** Expects `fn` to throw a `type` error naming `argument`. */
export function expectError(fn: () => unknown, type: typeof AnchoraxError, argument: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(type);
  expect((caught as AnchoraxError).argument).toBe(argument);
}

/** A dense layer as a float64 RefStage of a sequential reference (parameters `weight`, `bias`). */
export function refLinearStage(layer: RefLinear): RefStage {
  return {
    forward: (x) => refLinearForward(layer, x),
    vjp: (x, _qd, g) => {
      const grads = refLinearVjp(layer, x, g);
      return { dx: grads.dx, dParams: { weight: grads.dW, bias: grads.db } };
    },
  };
}

/** A defineLayer forward, f(u) = tanh(a ⊙ u + Qd) with a parameter `a` of featureSize values. */
export const SCALED_TANH_FORWARD = /* wgsl */ `
fn forward(row: u32, i: u32) -> f32 {
  return tanh(a[i] * state(row, i) + injected(row, i));
}`;

/** The adjoint of SCALED_TANH_FORWARD; `gradAExtra` (appended to each term of ∂a) lets a test plant a mistake. */
export function scaledTanhAdjoint(gradAExtra = ''): string {
  return /* wgsl */ `
fn slope(row: u32, i: u32) -> f32 {
  let y = forward(row, i);
  return grad_output(row, i) * (1.0 - y * y);
}
fn grad_input(row: u32, i: u32) -> f32 { return slope(row, i) * a[i]; }
fn grad_qd(row: u32, i: u32) -> f32 { return slope(row, i); }
fn grad_a(k: u32) -> f32 {
  var sum = 0.0;
  for (var r = 0u; r < rows(); r++) { sum += slope(r, k) * state(r, k)${gradAExtra}; }
  return sum;
}`;
}
