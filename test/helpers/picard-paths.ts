// What the fused Picard paths must match: the generic path's iterates bit for bit (the same
// product code and rules; the residual partials are grouped differently, so the trace may differ
// in the last bits), and the float64 reference's tnstep and fixed point.
import { expect } from 'vitest';
import type { SolveStats, SolverOptions } from '../../src';
import { refBlockMap, refPicard } from '../../src/reference';

/** One solve's outputs, read back. */
export interface PicardOutcome {
  u: number[];
  prev: number[];
  tnstep: number;
  stats: SolveStats;
}

/** The tanh block u ↦ tanh(u·weight + bias + Qd) of `batch` rows of d, for the reference. */
export interface BlockProblem {
  d: number;
  batch: number;
  weight: Float32Array;
  bias: Float32Array;
  qd: Float32Array;
}

export function expectPicardPathsAgree(fused: PicardOutcome, generic: PicardOutcome, problem: BlockProblem, options: SolverOptions & { eps: number; maxDepth: number }): void {
  expect(fused.u).toEqual(generic.u);
  expect(fused.prev).toEqual(generic.prev);
  expect([fused.tnstep, fused.stats.nstep, fused.stats.status]).toEqual([generic.tnstep, generic.stats.nstep, generic.stats.status]);
  expect(fused.stats.trace?.abs.length).toBe(generic.stats.trace?.abs.length);
  fused.stats.trace?.abs.forEach((a, i) => expect(a).toBeCloseTo(generic.stats.trace?.abs[i] ?? NaN, 6));
  const { d, batch } = problem;
  const map = refBlockMap({ d, w: Float64Array.from(problem.weight), b: Float64Array.from(problem.bias) }, Float64Array.from(problem.qd));
  const reference = refPicard(map, new Float64Array(batch * d), {
    eps: options.eps, maxDepth: options.maxDepth, stopMode: options.stopMode ?? 'abs', returnFinal: options.returnFinal ?? false,
  });
  expect(fused.tnstep).toBe(reference.tnstep);
  fused.u.forEach((v, i) => expect(Math.abs(v - reference.uStar[i])).toBeLessThan(1e-5));
}
