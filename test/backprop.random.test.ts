// JFB, GDEQ and IFT gradients on the GPU against the float64 CPU reference (src/reference/) on
// seeded random contractive problems: a covering set of feature sizes and batch shapes (not the
// full product; SwiftShader is slow). Every comparison is made at the GPU's own solve (its uPrev,
// uStar and Broyden factors), so what is measured is the backward pass alone, not the solver.
//
// Tolerances (float32 GPU vs float64 reference on the same float32 data), each about 7-10× the
// largest error measured over all cases on SwiftShader [in brackets]:
// - uStar = f(uPrev): max abs diff ≤ 2e-6 [3.0e-7]. tanh outputs are O(1); a float32 dot product
//   of length ≤ 300 with ‖w‖₂ = 0.7 rounds to a few 1e-7.
// - J_fᵀv (the ∂u of the adjoint kernels, bare and as IFT's system λ ↦ J_fᵀλ + g): relative 5e-6
//   [4.8e-7].
// - JFB, and GDEQ with Broyden from the GPU's own factors: relative 2e-6 per gradient [1.4e-7,
//   2.9e-7]. δ = ḡ ⊙ (1 − y²) loses relative precision where |y| → 1 (cancellation in 1 − y²),
//   bounded here by |z| ≲ 3; the preconditioning g − (gᵀU)Vᵀ adds float32 dot products of length n.
//   A 1e-4 relative error in δ, in J_fᵀλ + g or in the GDEQ correction fails these checks.
// - GDEQ with picard/anderson against JFB with the same solver: bit-identical (no factors, same
//   kernels, deterministic reductions).
// - IFT: relative 1e-5 [1.3e-6] against refIft at the GPU's uStar. The adjoint solve runs to its
//   default backwardEps, 1e-6 on the relative residual, so λ is within ≈ 1e-6/(1 − 0.7) relative,
//   plus float32 rounding (the floor is ≈ 4e-8 relative, so it always converges).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  anderson,
  broyden,
  gdeq,
  ift,
  jfb,
  picard,
  type Engine,
  type Gradients,
  type Solver,
  type TanhBlock,
  type Tensor,
  implicitBlock,
} from '../src';
import { refBlockForward, refBlockJtv, refGdeq, refIft, refJfb, type RefBlock, type RefBroydenFactors } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, relError, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const TOL = {
  uStar: 2e-6,
  jtv: 5e-6,
  jfb: 2e-6,
  gdeq: 2e-6,
  ift: 1e-5,
};

const SOLVERS = { picard, anderson, broyden };
type SolverName = keyof typeof SOLVERS;

// ---------------------------------------------------------------------------------------------
// Problems

/** Largest singular value of the d×d row-major `a` (power iteration on aᵀa). */
function spectralNorm(a: Float64Array, d: number): number {
  let v = new Float64Array(d).fill(1 / Math.sqrt(d));
  let sigma = 0;
  for (let iter = 0; iter < 200; iter++) {
    const av = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) av[i] += a[i * d + j] * v[j];
    const next = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) next[j] += a[i * d + j] * av[i];
    const len = Math.hypot(...next);
    sigma = Math.sqrt(len);
    v = next.map((x) => x / len);
  }
  return sigma;
}

/** Rounds to float32 and back, so the reference sees exactly the GPU's data. */
function f32(a: Float64Array): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}

interface Case {
  d: number;
  /** 0 = unbatched state [d]. */
  batch: number;
  seed: number;
  /** Forward solver of the JFB and IFT runs. */
  solver: SolverName;
}

const CASES: Case[] = [
  { d: 1, batch: 0, seed: 101, solver: 'picard' },
  { d: 3, batch: 1, seed: 102, solver: 'anderson' },
  { d: 17, batch: 5, seed: 103, solver: 'broyden' },
  { d: 64, batch: 32, seed: 105, solver: 'picard' },
  { d: 130, batch: 5, seed: 106, solver: 'broyden' },
  { d: 300, batch: 0, seed: 108, solver: 'broyden' },
];

/** A problem on the GPU and its float64 copy (of the same float32 values). */
interface Problem {
  c: Case;
  shape: number[];
  n: number;
  block: RefBlock;
  Qd64: Float64Array;
  g64: Float64Array;
  f: TanhBlock;
  Qd: Tensor;
  g: Tensor;
  dispose(): void;
}

/** w uniform then scaled to ‖w‖₂ = 0.7 (so ρ(w) ≤ 0.7 and f is a contraction), b ∈ ±0.5, Qd, g ∈ ±1. */
function makeProblem(c: Case): Problem {
  const random = rng(c.seed);
  const raw = randomArray(random, c.d * c.d);
  const scale = 0.7 / spectralNorm(raw, c.d);
  const n = Math.max(c.batch, 1) * c.d;
  const shape = c.batch === 0 ? [c.d] : [c.batch, c.d];
  const block: RefBlock = { d: c.d, w: f32(raw.map((x) => x * scale)), b: f32(randomArray(random, c.d, 0.5)) };
  const Qd64 = f32(randomArray(random, n));
  const g64 = f32(randomArray(random, n));
  const f = implicitBlock(engine, { weight: Float32Array.from(block.w), bias: Float32Array.from(block.b) });
  const Qd = engine.tensor(Qd64, shape);
  const g = engine.tensor(g64, shape);
  return {
    c, shape, n, block, Qd64, g64, f, Qd, g,
    dispose() {
      Qd.dispose();
      g.dispose();
      f.params.weight.dispose();
      f.params.bias.dispose();
    },
  };
}

async function read64(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

interface GradErrors {
  w: number;
  b: number;
  Qd: number;
}

async function gradErrors(grads: Gradients, expected: { w: Float64Array; b: Float64Array; Qd: Float64Array }): Promise<GradErrors> {
  return {
    w: relError(await grads.weight.read(), expected.w),
    b: relError(await grads.bias.read(), expected.b),
    Qd: relError(await grads.Qd.read(), expected.Qd),
  };
}

function expectWithin(errors: GradErrors, tolerance: number): void {
  expect(errors.w).toBeLessThan(tolerance);
  expect(errors.b).toBeLessThan(tolerance);
  expect(errors.Qd).toBeLessThan(tolerance);
}

function disposeGrads(grads: Gradients): void {
  for (const t of Object.values(grads)) t.dispose();
}

/** Bit patterns of a tensor's values: equal iff the tensors are bit-identical. */
async function bits(t: Tensor): Promise<Uint32Array> {
  return new Uint32Array((await t.read()).buffer);
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

// ---------------------------------------------------------------------------------------------

const FORWARD = { eps: 1e-4, maxDepth: 40 };

/** "d=17, Qd [5, 17], forward anderson" */
function label(c: Case): string {
  return `d=${c.d}, Qd [${c.batch === 0 ? c.d : `${c.batch}, ${c.d}`}], forward ${c.solver}`;
}

describe.each(CASES.map((c) => [label(c), c] as const))('%s', (_label, c) => {
  let p: Problem;
  beforeAll(() => {
    p = makeProblem(c);
  });
  afterAll(() => p?.dispose());

  it('jfb: uStar = f(uPrev) and the gradients equal refJfb at the GPU uPrev', async () => {
    const out = await jfb(p.f, p.Qd, { solver: SOLVERS[c.solver], ...FORWARD });
    const uPrev = await read64(out.uPrev);
    const expected = refJfb(p.block, p.Qd64, uPrev, p.g64);
    const uStarErr = maxAbsDiff(await out.uStar.read(), refBlockForward(p.block, uPrev, p.Qd64));
    expect(uStarErr).toBeLessThan(TOL.uStar);
    const grads = await out.backward(p.g);
    const errors = await gradErrors(grads, expected);
    expectWithin(errors, TOL.jfb);
    disposeGrads(grads);
    out.dispose();
  });

  it.each(['picard', 'anderson', 'broyden'] as const)('ift with backwardSolver %s: J_fᵀv kernels, converged adjoint, gradients = refIft at the GPU uStar', async (backwardName) => {
    const random = rng(c.seed * 7 + backwardName.length);
    const v64 = f32(randomArray(random, p.n));
    const v = engine.tensor(v64, p.shape);
    const jtv: { plain?: Float32Array; system?: Float32Array; rhs?: Float32Array } = {};
    let point: Tensor | undefined;
    // The adjoint solver receives IFT's adjoint system λ ↦ J_f(u*)ᵀλ + g: evaluate it once at v
    // (ift's own path), and the bare adjoint kernel (∂u = δwᵀ, no "+ g") at the same point.
    const spy: Solver = async (system, rhs, options) => {
      if (!point) throw new Error('backward ran before ift returned');
      const batch = p.shape.length === 2 ? p.shape[0] : 1;
      await system.prepare(batch);
      const viaSystem = engine.zeros(p.shape);
      const plain = engine.zeros(p.shape);
      const encoder = engine.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      system.encodeForward(pass, { input: v.buffer, output: viaSystem.buffer, Qd: rhs.buffer, gate: engine.openGate() }, batch);
      p.f.encodeAdjoint(pass, { input: point.buffer, Qd: p.Qd.buffer, gradOutput: v.buffer, gradInput: plain.buffer, gate: engine.openGate() }, batch);
      pass.end();
      engine.device.queue.submit([encoder.finish()]);
      jtv.system = await viaSystem.read();
      jtv.plain = await plain.read();
      jtv.rhs = await rhs.read();
      viaSystem.dispose();
      plain.dispose();
      return SOLVERS[backwardName](system, rhs, options);
    };
    const gNorm = norm(p.g64);
    const out = await ift(p.f, p.Qd, { solver: SOLVERS[c.solver], ...FORWARD, backwardSolver: spy });
    point = out.uStar;
    const uStar = await read64(out.uStar);
    const uPrev = await read64(out.uPrev);
    const uStarErr = maxAbsDiff(uStar, refBlockForward(p.block, uPrev, p.Qd64));
    expect(uStarErr).toBeLessThan(TOL.uStar);

    const grads = await out.backward(p.g);
    // J_fᵀv at u*, and the adjoint system's map.
    const expectedJtv = refBlockJtv(p.block, uStar, p.Qd64, v64);
    expect(jtv.rhs && maxAbsDiff(jtv.rhs, p.g64)).toBe(0);
    const plainErr = relError(jtv.plain ?? [], expectedJtv);
    const systemErr = relError(jtv.system ?? [], expectedJtv.map((x, i) => x + p.g64[i]));
    expect(plainErr).toBeLessThan(TOL.jtv);
    expect(systemErr).toBeLessThan(TOL.jtv);

    expect(out.backwardStats?.converged).toBe(true);
    expect(out.backwardStats?.nonFinite).toBe(false);
    const expected = refIft(p.block, p.Qd64, uStar, p.g64);
    const errors = await gradErrors(grads, expected);
    expectWithin(errors, TOL.ift);
    // IFT differs from JFB at the same point by far more than the tolerance (the check can fail).
    expect(relError(expected.w, refJfb(p.block, p.Qd64, uStar, p.g64).w)).toBeGreaterThan(10 * TOL.ift);
    disposeGrads(grads);
    out.dispose();
    v.dispose();
  });

  it('gdeq with broyden equals refGdeq with the GPU solve’s own factors', async () => {
    const options = { eps: 1e-4, maxDepth: 30 };
    const solved = await broyden(p.f, p.Qd, { ...options, returnB: true });
    const B = solved.B;
    if (!B) throw new Error('returnB gave no factors');
    const L = B.validMask.length;
    expect(B.Us.shape).toEqual([p.n, L]);
    expect(B.VTs.shape).toEqual([L, p.n]);
    const factors: RefBroydenFactors = { Us: await read64(B.Us), VTs: await read64(B.VTs), validMask: B.validMask, L };
    expect(B.validMask.some(Boolean)).toBe(true);

    const out = await gdeq(p.f, p.Qd, { solver: broyden, ...options });
    // gdeq's own solve is the same deterministic solve: same steps, bit-identical uPrev.
    expect(out.tnstep).toBe(solved.tnstep);
    expect(await bits(out.uPrev)).toEqual(await bits(solved.uPrev));
    const uPrev = await read64(out.uPrev);
    const expected = refGdeq(p.block, p.Qd64, uPrev, p.g64, factors);
    const grads = await out.backward(p.g);
    const errors = await gradErrors(grads, expected);
    expectWithin(errors, TOL.gdeq);
    // The preconditioning matters: plain JFB is far from the expected GDEQ gradient.
    expect(relError(expected.Qd, refJfb(p.block, p.Qd64, uPrev, p.g64).Qd)).toBeGreaterThan(100 * TOL.gdeq);
    disposeGrads(grads);
    out.dispose();
    solved.dispose();
  });

  it.each(['picard', 'anderson'] as const)('gdeq with %s is bit-identical to jfb', async (name) => {
    const options = { solver: SOLVERS[name], ...FORWARD };
    const a = await gdeq(p.f, p.Qd, options);
    const b = await jfb(p.f, p.Qd, options);
    expect(await bits(a.uPrev)).toEqual(await bits(b.uPrev));
    expect(await bits(a.uStar)).toEqual(await bits(b.uStar));
    const ga = await a.backward(p.g);
    const gb = await b.backward(p.g);
    expect(Object.keys(ga).sort()).toEqual(['Qd', 'bias', 'weight']);
    for (const key of ['weight', 'bias', 'Qd'] as const) expect(await bits(ga[key])).toEqual(await bits(gb[key]));
    disposeGrads(ga);
    disposeGrads(gb);
    a.dispose();
    b.dispose();
  });
});
