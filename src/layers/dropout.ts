/**
 * Dropout settings shared by the tanh block and the `dropout` stage: their validation and the
 * dropout members of the kernels' params (shaders/lib/dropout.wgsl).
 */
import { OptionError } from '../errors';
import { describe, readChoice, readNumber, readOptions } from '../validate';

/**
 * When a dropout mask is drawn anew:
 * - `'per-iteration'`: every evaluation of f in a solve gets its own mask, from (key, evaluation
 *   index) — Anderson's and the line search's evaluations included;
 * - `'per-solve'`: one mask for the whole solve, from the key alone (variational dropout), so the
 *   solver iterates one deterministic map and can converge to its fixed point.
 */
export type DropoutNoise = 'per-iteration' | 'per-solve';

/**
 * Inverted dropout on the tanh block's output:
 * `f(u, Qd) = tanh(u @ weight + Qd + bias) ⊙ mask / (1 − rate)`, where each element of the `[batch, d]`
 * output is kept (mask 1) with probability 1 − rate. The mask multiplies the activation's output,
 * not its input or the state u, so a dropped element of f is exactly 0. Masks come from the
 * solver's `key` option through a counter-based generator on the GPU (shaders/lib/rng.wgsl): the
 * same key gives the same solve bit for bit. With the solver option `inference: true`, in the
 * inference-mode recomputation of `jfb`/`gdeq`/`ift`, and outside a solve, no mask is applied and
 * f equals the deterministic block's exactly.
 */
export interface DropoutOptions {
  /** Probability that an output element is zeroed, in [0, 1). 0 disables dropout. */
  rate: number;
  /** When masks change. Default `'per-iteration'`. */
  noise?: DropoutNoise;
}

/** Validated dropout settings; null for a deterministic block. */
export function checkDropout(value: unknown): Readonly<Required<DropoutOptions>> | null {
  if (value === undefined) return null;
  if (typeof value !== 'number' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new OptionError('dropout', `must be a rate in [0, 1) or { rate, noise }, got ${describe(value)}`);
  }
  const options = typeof value === 'number' ? { rate: value } : readOptions(value, 'dropout', ['rate', 'noise']);
  if (options.rate === undefined) throw new OptionError('dropout.rate', 'is required (a number in [0, 1))');
  const rate = readNumber(options.rate, 'dropout.rate', 0, { min: 0, below: 1 });
  const noise = readChoice<DropoutNoise>(options.noise, 'dropout.noise', 'per-iteration', ['per-iteration', 'per-solve']);
  return Object.freeze({ rate, noise });
}

/** The dropout members of the block kernels' params (lib/dropout.wgsl). */
export function dropoutParams(dropout: Readonly<Required<DropoutOptions>> | null): Record<string, number> {
  if (dropout === null || dropout.rate === 0) return { drop_threshold: 0, drop_scale: 1, drop_per_solve: 0 };
  // Dropped when a uniform u32 draw is below rate · 2³² (clamped so a rate just under 1 stays < 2³²).
  const threshold = Math.min(Math.round(dropout.rate * 2 ** 32), 2 ** 32 - 1);
  return {
    drop_threshold: threshold,
    drop_scale: Math.fround(1 / (1 - dropout.rate)),
    drop_per_solve: dropout.noise === 'per-solve' ? 1 : 0,
  };
}

