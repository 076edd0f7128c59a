// Dropout masks on the CPU, bit-exact with shaders/lib/rng.wgsl and shaders/lib/dropout.wgsl
// (the same integer hash written with 32-bit JavaScript arithmetic), and the dropout block's
// forward in float64. An oracle for the GPU's masks: it imports nothing from the GPU side.
import { refBlockForward, type RefBlock } from './block';

/** One LCG step and PCG's RXS-M-XS output permutation: a bijective u32 hash (rng_permute). */
export function refRngPermute(x: number): number {
  const state = (Math.imul(x, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Key of one stream of a seed (rng_stream_key). */
export function refRngStreamKey(key: number, stream: number): number {
  return refRngPermute((refRngPermute(key >>> 0) ^ stream) >>> 0);
}

/** Uniform u32 number `counter` of a stream (rng_u32). */
export function refRngU32(streamKey: number, counter: number): number {
  return refRngPermute((refRngPermute((streamKey ^ counter) >>> 0) ^ streamKey) >>> 0);
}

/** Dropout settings as the tanh block uses them. */
export interface RefDropout {
  /** Probability of dropping an element, in [0, 1). */
  rate: number;
  /** 'per-solve' uses stream 0 for every evaluation. */
  noise: 'per-iteration' | 'per-solve';
}

/**
 * Keep-mask (1 kept, 0 dropped) of `size` elements for evaluation `evalIndex` of a solve with
 * `key`: element i is dropped when its draw is below rate · 2³².
 */
export function refDropoutMask(dropout: RefDropout, key: number, evalIndex: number, size: number): Uint8Array {
  const threshold = Math.min(Math.round(dropout.rate * 2 ** 32), 2 ** 32 - 1);
  const streamKey = refRngStreamKey(key, dropout.noise === 'per-solve' ? 0 : evalIndex);
  const mask = new Uint8Array(size);
  for (let i = 0; i < size; i++) mask[i] = refRngU32(streamKey, i) < threshold ? 0 : 1;
  return mask;
}

/** `tanh(u @ w + Qd + b) ⊙ mask / (1 − rate)` with the mask of evaluation `evalIndex`. */
export function refDropoutBlockForward(
  block: RefBlock,
  dropout: RefDropout,
  key: number,
  evalIndex: number,
  u: Float64Array,
  Qd: Float64Array,
): Float64Array {
  const y = refBlockForward(block, u, Qd);
  const mask = refDropoutMask(dropout, key, evalIndex, y.length);
  return y.map((v, i) => (mask[i] ? v / (1 - dropout.rate) : 0));
}
