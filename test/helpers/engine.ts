// Shared helpers of the GPU tests: one engine per test file, seeded random data, comparisons.
import { AnchoraxError, Engine } from '../../src';
import { platform } from '../../src/platform';

/** Creates the engine (Dawn in Node; SwiftShader when there is no GPU). */
export function createTestEngine(): Promise<Engine> {
  return Engine.create();
}

/**
 * An engine on a device of the same adapter requested without the `subgroups` feature (so it
 * compiles the portable kernels), and that device, which the test destroys after the engine.
 */
export async function createPortableEngine(): Promise<{ engine: Engine; device: GPUDevice }> {
  const gpu = platform.gpu ? await platform.gpu() : undefined;
  const adapter = await gpu?.requestAdapter();
  if (!adapter) throw new Error('no adapter');
  const device = await adapter.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage } });
  return { engine: Engine.fromDevice(device), device };
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [-scale, scale). */
export function randomArray(random: () => number, size: number, scale = 1): Float64Array {
  return Float64Array.from({ length: size }, () => (2 * random() - 1) * scale);
}

/** max |a_i − b_i|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** ‖a − b‖ / ‖b‖. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

/** B·y = −y + U(Vᵀy) over the valid columns, for dense U [dim, L] and Vᵀ [L, dim] row-major. */
export function applyB(Us: ArrayLike<number>, VTs: ArrayLike<number>, valid: readonly boolean[], y: Float64Array): Float64Array {
  const L = valid.length;
  const dim = y.length;
  const out = Float64Array.from(y, (v) => -v);
  for (let j = 0; j < L; j++) {
    if (!valid[j]) continue;
    let vty = 0;
    for (let i = 0; i < dim; i++) vty += VTs[j * dim + i] * y[i];
    for (let i = 0; i < dim; i++) out[i] += Us[i * L + j] * vty;
  }
  return out;
}

/** The typed error `pending` rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejectsWith(pending: Promise<unknown>): Promise<AnchoraxError> {
  try {
    await pending;
  } catch (err) {
    if (err instanceof AnchoraxError) return err;
    throw err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** `a` rounded to float32, as float64 values (inputs the GPU and the float64 reference both see exactly). */
export function f32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}
