// The benchmark's `--layers block,sequential`: the sequential row must be the block's problem (same
// weight, bias, Qd, solver and depth) built from stages, or its timing compares nothing. Both
// constructions, as the suite uploads them, solve against the float64 oracle on Dawn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anderson, picard, type Engine } from '../src';
import { refAnderson, refBlockMap, refPicard } from '../src/reference';
import { benchProblem } from '../bench/problem';
import { standardCases, uploadCase, type BenchCase } from '../bench/suite';
import { createTestEngine, maxAbsDiff } from './helpers/engine';

describe('bench layers', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createTestEngine();
  });
  afterAll(() => engine.destroy());

  it('lists each sequential case right after the block case of the same problem, block only by default', () => {
    const both = standardCases([8, 16], [0, 2], 0.25, ['block', 'sequential']);
    const blockOnly = standardCases([8, 16], [0, 2], 0.25);
    expect(blockOnly).toHaveLength(12);
    expect(blockOnly.every((c) => c.layer === 'block')).toBe(true);
    expect(both).toHaveLength(24);
    blockOnly.forEach((c, i) => {
      expect(both[2 * i]).toEqual(c);
      expect(both[2 * i + 1]).toEqual({ ...c, layer: 'sequential' });
    });
    expect(both.slice(0, 6).map((c) => `${c.solver}/${c.layer}/${c.maxDepth}`)).toEqual([
      'picard/block/16', 'picard/sequential/16', 'anderson/block/16', 'anderson/sequential/16', 'broyden/block/8', 'broyden/sequential/8',
    ]);
  });

  for (const solver of ['picard', 'anderson'] as const) {
    it(`the block and the sequential composition solve the same problem (${solver}, float64 oracle)`, async () => {
      const problem = benchProblem(24, 3);
      const maxDepth = 10;
      const ref = refBlockMap({ d: problem.d, w: Float64Array.from(problem.w), b: Float64Array.from(problem.b) }, Float64Array.from(problem.Qd));
      const u0 = new Float64Array(problem.rows * problem.d);
      const options = { eps: 0, maxDepth };
      const expected = solver === 'picard' ? refPicard(ref, u0, options) : refAnderson(ref, u0, { ...options, windowSize: 2, reg: 1e-8 });
      for (const layer of ['block', 'sequential'] as const) {
        const c: BenchCase = { solver, layer, d: problem.d, batch: 3, maxDepth };
        const { f, Qd } = uploadCase(engine, problem, c, 'auto');
        expect(Qd.shape).toEqual([3, 24]);
        const result = await (solver === 'picard' ? picard : anderson)(f, Qd, options);
        expect(result.tnstep, layer).toBe(expected.tnstep);
        expect(maxAbsDiff(await result.uStar.read(), expected.uStar), layer).toBeLessThan(1e-4);
        result.dispose();
        f.dispose();
        Qd.dispose();
      }
    });
  }
});
