// The tanh implicit block f(u, Qd) = tanh(u @ w + Qd + b) in float64, with its exact VJP.
// States are [rows, d] row-major; an unbatched state is simply one row.

/** Parameters of the tanh block: `w` is d×d row-major (`w[k*d + j]`), `b` has d entries. */
export interface RefBlock {
  d: number;
  w: Float64Array;
  b: Float64Array;
}

function rowCount(block: RefBlock, u: Float64Array, Qd: Float64Array): number {
  const { d } = block;
  if (block.w.length !== d * d) throw new Error(`w must have ${d * d} entries, got ${block.w.length}`);
  if (block.b.length !== d) throw new Error(`b must have ${d} entries, got ${block.b.length}`);
  if (u.length % d !== 0) throw new Error(`state length ${u.length} is not a multiple of d=${d}`);
  if (Qd.length !== u.length) throw new Error(`Qd length ${Qd.length} differs from state length ${u.length}`);
  return u.length / d;
}

/** Pre-activation `z = u @ w + Qd + b` for every row. */
function preActivation(block: RefBlock, u: Float64Array, Qd: Float64Array): Float64Array {
  const { d, w, b } = block;
  const rows = rowCount(block, u, Qd);
  const z = new Float64Array(u.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += u[r * d + k] * w[k * d + j];
      z[r * d + j] = s + Qd[r * d + j] + b[j];
    }
  }
  return z;
}

/**
 * Forward pass `f(u, Qd) = tanh(u @ w + Qd + b)`.
 * @param u state, [rows, d] row-major
 * @param Qd injection, same shape as `u`
 */
export function refBlockForward(block: RefBlock, u: Float64Array, Qd: Float64Array): Float64Array {
  return preActivation(block, u, Qd).map(Math.tanh);
}

/** Cotangents of the block's inputs and parameters. */
export interface RefBlockGrads {
  w: Float64Array;
  b: Float64Array;
  Qd: Float64Array;
  u: Float64Array;
}

/**
 * VJP at (u, Qd) applied to `gOut`: with `y = tanh(z)`, `δ = ḡ ⊙ (1 − y²)`,
 * `∂w = uᵀδ` (d×d row-major), `∂b = Σ_rows δ`, `∂Qd = δ`, `∂u = δ wᵀ`.
 */
export function refBlockVjp(
  block: RefBlock,
  u: Float64Array,
  Qd: Float64Array,
  gOut: Float64Array,
): RefBlockGrads {
  const { d, w } = block;
  const rows = rowCount(block, u, Qd);
  if (gOut.length !== u.length) throw new Error(`gOut length ${gOut.length} differs from state length ${u.length}`);
  const y = refBlockForward(block, u, Qd);
  const delta = new Float64Array(u.length);
  for (let i = 0; i < u.length; i++) delta[i] = gOut[i] * (1 - y[i] * y[i]);

  const gw = new Float64Array(d * d);
  const gb = new Float64Array(d);
  const gu = new Float64Array(u.length);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < d; k++) {
      const uk = u[r * d + k];
      let s = 0;
      for (let j = 0; j < d; j++) {
        const dj = delta[r * d + j];
        gw[k * d + j] += uk * dj;
        s += dj * w[k * d + j];
      }
      gu[r * d + k] = s;
    }
    for (let j = 0; j < d; j++) gb[j] += delta[r * d + j];
  }
  return { w: gw, b: gb, Qd: delta, u: gu };
}

/** `J_fᵀ v` at `u` (the Jacobian with respect to the state), i.e. the `∂u` of {@link refBlockVjp}. */
export function refBlockJtv(block: RefBlock, u: Float64Array, Qd: Float64Array, v: Float64Array): Float64Array {
  return refBlockVjp(block, u, Qd, v).u;
}

/** The block as a map on the flattened state with `Qd` held fixed, as the solvers take it. */
export function refBlockMap(block: RefBlock, Qd: Float64Array): (u: Float64Array) => Float64Array {
  return (u) => refBlockForward(block, u, Qd);
}
