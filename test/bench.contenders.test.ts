// The benchmark's contenders must run the engine's iterations, or their timings compare nothing:
// the CPU loop and the TF.js formulation (on TF.js's CPU backend here) against the float64 oracle.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { cpuAnderson, cpuPicard } from '../bench/contenders/cpu';
import { tfAnderson, tfBlock, tfPicard } from '../bench/contenders/tfjs-solvers';
import { benchProblem, type BenchProblem } from '../bench/problem';
import { refAnderson, refBlockMap, refPicard, type RefSolveResult } from '../src/reference';

const ANDERSON = { windowSize: 2, reg: 1e-8, mixing: 1 };

function reference(problem: BenchProblem, solver: 'picard' | 'anderson', maxDepth: number): RefSolveResult {
  const block = { d: problem.d, w: Float64Array.from(problem.w), b: Float64Array.from(problem.b) };
  const f = refBlockMap(block, Float64Array.from(problem.Qd));
  const u0 = new Float64Array(problem.rows * problem.d);
  const opts = { eps: 0, maxDepth };
  return solver === 'picard' ? refPicard(f, u0, opts) : refAnderson(f, u0, { ...opts, ...ANDERSON });
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('bench contenders run the engine iterations', () => {
  const problem = benchProblem(16, 3);
  const depth = 12;

  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const solver of ['picard', 'anderson'] as const) {
    it(`CPU ${solver} matches the reference`, () => {
      const ref = reference(problem, solver, depth);
      const cpu = solver === 'picard' ? cpuPicard(problem, depth) : cpuAnderson(problem, { maxDepth: depth, ...ANDERSON });
      expect(cpu.tnstep).toBe(ref.tnstep);
      expect(maxDifference(cpu.uStar, ref.uStar)).toBeLessThan(1e-4);
      expect(cpu.absResidual).toBeCloseTo(ref.absResidual, 4);
    });

    it(`TF.js ${solver} matches the reference and frees its tensors`, async () => {
      const ref = reference(problem, solver, depth);
      const block = tfBlock(tf, problem);
      const before = tf.memory().numTensors;
      const result = solver === 'picard' ? await tfPicard(tf, block, depth) : await tfAnderson(tf, block, { maxDepth: depth, ...ANDERSON });
      expect(tf.memory().numTensors).toBe(before);
      block.dispose();
      expect(result.tnstep).toBe(ref.tnstep);
      expect(maxDifference(result.uStar, ref.uStar)).toBeLessThan(1e-4);
      expect(result.absResidual).toBeCloseTo(ref.absResidual, 4);
    });
  }
});
