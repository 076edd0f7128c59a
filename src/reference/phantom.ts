// Float64 reference of the phantom gradients (src/backprop/phantom.ts), for any map given as a
// forward function and its VJP, and for the tanh block. Written in the textbook arrangement
// (the unrolled form's reverse recursion with the damping applied to each VJP, the Neumann form
// as an explicit sum of powers), not the GPU's, so that a test compares two derivations.
import { refBlockForward, refBlockVjp, type RefBlock } from './block';
import type { RefGrads } from './backprop';

/** A map u ↦ f(u) (Qd and parameters held fixed) with its vector-Jacobian product. */
export interface RefDifferentiable {
  forward(u: Float64Array): Float64Array;
  /** `du = J_f(u)ᵀ g`, and `grads`: the cotangents of the inputs differentiated (parameters, Qd) by name. */
  vjp(u: Float64Array, g: Float64Array): { du: Float64Array; grads: Readonly<Record<string, Float64Array>> };
}

/** The two phantom forms, k steps, damping λ ∈ (0, 1]. */
export interface RefPhantomOptions {
  steps: number;
  damping: number;
  form: 'unrolled' | 'neumann';
}

/** The value phantom returns and the gradients of ⟨gradUStar, value⟩. */
export interface RefPhantomResult {
  uStar: Float64Array;
  grads: Record<string, Float64Array>;
}

/** a·x + b·y elementwise. */
function combine(a: number, x: Float64Array, b: number, y: Float64Array): Float64Array {
  return Float64Array.from(x, (v, i) => a * v + b * y[i]);
}

/** `into[name] += scale · grads[name]` for every name of `grads`. */
function addScaled(into: Record<string, Float64Array>, grads: Readonly<Record<string, Float64Array>>, scale: number): void {
  for (const [name, value] of Object.entries(grads)) {
    const sum = (into[name] ??= new Float64Array(value.length));
    for (let i = 0; i < value.length; i++) sum[i] += scale * value[i];
  }
}

/**
 * Phantom gradients from `u0` (held constant) with incoming gradient ḡ = `gradUStar`, k = `steps`,
 * λ = `damping`:
 * - `'unrolled'`: u_{i+1} = (1 − λ)u_i + λ f(u_i) for i < k; returns u_k and the gradient of
 *   ⟨ḡ, u_k⟩ by reverse accumulation: g_k = ḡ, and for i = k − 1 … 0
 *   ∂θ += λ·VJP_θ f(u_i)ᵀ g_{i+1}, g_i = (1 − λ)g_{i+1} + λ·J_f(u_i)ᵀ g_{i+1}.
 * - `'neumann'`: returns f(u0) and VJP_θ f(u0)ᵀ h with h = λ Σ_{i<k} Aⁱ ḡ, A = (1 − λ)I + λJ_f(u0)ᵀ
 *   (the first k terms of (I − J_fᵀ)⁻¹ ḡ = λ(I − A)⁻¹ ḡ).
 */
export function refPhantom(f: RefDifferentiable, u0: Float64Array, gradUStar: Float64Array, options: RefPhantomOptions): RefPhantomResult {
  const { steps: k, damping: lambda } = options;
  if (!Number.isInteger(k) || k < 1) throw new Error(`steps must be an integer ≥ 1, got ${k}`);
  if (!(lambda > 0 && lambda <= 1)) throw new Error(`damping must lie in (0, 1], got ${lambda}`);
  const grads: Record<string, Float64Array> = {};
  if (options.form === 'neumann') {
    const sum = new Float64Array(u0.length);
    let power: Float64Array = Float64Array.from(gradUStar);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < sum.length; j++) sum[j] += power[j];
      if (i + 1 < k) power = combine(1 - lambda, power, lambda, f.vjp(u0, power).du);
    }
    addScaled(grads, f.vjp(u0, sum).grads, lambda);
    return { uStar: f.forward(u0), grads };
  }
  const states: Float64Array[] = [Float64Array.from(u0)];
  for (let i = 0; i < k; i++) states.push(combine(1 - lambda, states[i], lambda, f.forward(states[i])));
  let g: Float64Array = Float64Array.from(gradUStar);
  for (let i = k - 1; i >= 0; i--) {
    const { du, grads: step } = f.vjp(states[i], g);
    addScaled(grads, step, lambda);
    g = combine(1 - lambda, g, lambda, du);
  }
  return { uStar: states[k], grads };
}

/** The tanh block as a {@link RefDifferentiable} of u, differentiated for w, b and Qd. */
export function refBlockDifferentiable(block: RefBlock, Qd: Float64Array): RefDifferentiable {
  return {
    forward: (u) => refBlockForward(block, u, Qd),
    vjp: (u, g) => {
      const { u: du, w, b, Qd: dQd } = refBlockVjp(block, u, Qd, g);
      return { du, grads: { w, b, Qd: dQd } };
    },
  };
}

/** {@link refPhantom} of the tanh block from `uPrev` (the solve's uPrev, as `phantom` starts there). */
export function refPhantomBlock(block: RefBlock, Qd: Float64Array, uPrev: Float64Array, gradUStar: Float64Array, options: RefPhantomOptions): RefGrads {
  const { uStar, grads } = refPhantom(refBlockDifferentiable(block, Qd), uPrev, gradUStar, options);
  return { uStar, w: grads.w, b: grads.b, Qd: grads.Qd };
}
