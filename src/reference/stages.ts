// Float64 references of the elementwise and glue stages, and of a sequential composition of
// stages given as forward/VJP pairs — the oracle for `sequential(...)` layers. Imports nothing
// from the GPU side.
import { refRngStreamKey, refRngU32, type RefDropout } from './dropout';

/** The elementwise activations of shaders/stages/elementwise.wgsl. */
export type RefActivation = 'tanh' | 'relu' | 'gelu';

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** act(x) elementwise (gelu: the tanh approximation). */
export function refActivation(op: RefActivation, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => {
    if (op === 'tanh') return Math.tanh(v);
    if (op === 'relu') return Math.max(v, 0);
    return 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_A * v ** 3)));
  });
}

/** ḡ ⊙ act'(x) (relu'(0) = 0). */
export function refActivationVjp(op: RefActivation, x: ArrayLike<number>, g: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => {
    if (op === 'tanh') return g[i] * (1 - Math.tanh(v) ** 2);
    if (op === 'relu') return v > 0 ? g[i] : 0;
    const t = Math.tanh(GELU_C * (v + GELU_A * v ** 3));
    return g[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * v * v));
  });
}

/**
 * The dropout stage's factor per element (0 or 1/(1 − rate)) for evaluation `evalIndex` of a
 * solve with `key`, at position `salt` of its sequential layer (the stage's index).
 */
export function refDropoutStageFactors(dropout: RefDropout, key: number, salt: number, evalIndex: number, size: number): Float64Array {
  const threshold = Math.min(Math.round(dropout.rate * 2 ** 32), 2 ** 32 - 1);
  const scale = Math.fround(1 / (1 - dropout.rate));
  const streamKey = refRngStreamKey((key ^ salt) >>> 0, dropout.noise === 'per-solve' ? 0 : evalIndex);
  return Float64Array.from({ length: size }, (_, i) => (refRngU32(streamKey, i) < threshold ? 0 : scale));
}

/** One stage as a float64 function of its input (and Qd) with its exact VJP. */
export interface RefStage {
  forward(x: Float64Array, Qd: Float64Array): Float64Array;
  /** Cotangents of the input, of Qd (when the stage reads it) and of the stage's parameters. */
  vjp(x: Float64Array, Qd: Float64Array, g: Float64Array): { dx: Float64Array; dQd?: Float64Array; dParams?: Record<string, Float64Array> };
}

/** An activation as a RefStage. */
export function refActivationStage(op: RefActivation): RefStage {
  return { forward: (x) => refActivation(op, x), vjp: (x, _qd, g) => ({ dx: refActivationVjp(op, x, g) }) };
}

/** `add(Qd)` as a RefStage. */
export const refAddQdStage: RefStage = {
  forward: (x, Qd) => Float64Array.from(x, (v, i) => v + Qd[i]),
  vjp: (_x, _qd, g) => ({ dx: Float64Array.from(g), dQd: Float64Array.from(g) }),
};

/** f(u, Qd) of stages applied in order. */
export function refSequentialForward(stages: readonly RefStage[], u: Float64Array, Qd: Float64Array): Float64Array {
  return stages.reduce((x, stage) => stage.forward(x, Qd), u);
}

/** VJP of a sequential composition: ∂u, ∂Qd (summed over stages) and `"<index>.<name>"` parameter gradients. */
export function refSequentialVjp(
  stages: readonly RefStage[],
  u: Float64Array,
  Qd: Float64Array,
  g: Float64Array,
): { du: Float64Array; dQd: Float64Array; dParams: Record<string, Float64Array> } {
  const inputs: Float64Array[] = [];
  let x = u;
  for (const stage of stages) {
    inputs.push(x);
    x = stage.forward(x, Qd);
  }
  const dQd = new Float64Array(Qd.length);
  const dParams: Record<string, Float64Array> = {};
  let cotangent = g;
  for (let i = stages.length - 1; i >= 0; i--) {
    const grads = stages[i].vjp(inputs[i], Qd, cotangent);
    if (grads.dQd) grads.dQd.forEach((v, k) => (dQd[k] += v));
    for (const [name, value] of Object.entries(grads.dParams ?? {})) dParams[`${i}.${name}`] = value;
    cotangent = grads.dx;
  }
  return { du: cotangent, dQd, dParams };
}
