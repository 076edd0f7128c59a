// GPU solvers against the original library's float64 outputs (test/fixtures/golden.json), with the
// float32 tolerances of the golden README.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anderson, broyden, picard, type Engine, type SolverOptions, type TanhBlock, type Tensor, implicitBlock } from '../src';
import { loadGolden, type GoldenCase, type GoldenRun } from './helpers/golden';
import { applyB, createTestEngine, maxAbsDiff } from './helpers/engine';
import { refBlockForward } from '../src/reference';

const SOLVERS = { picard, anderson, broyden };
let engine: Engine;

beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

function setup(c: GoldenCase): { f: TanhBlock; Qd: Tensor } {
  const f = implicitBlock(engine, { weight: Float32Array.from(c.weight), bias: Float32Array.from(c.bias) });
  const shape = c.batch === 0 ? [c.d] : [c.batch, c.d];
  return { f, Qd: engine.tensor(Float32Array.from(c.Qd), shape) };
}

/** ‖f(u) − u‖ in float64 for a float32 GPU result. */
function residual(c: GoldenCase, u: Float32Array): number {
  const fu = refBlockForward({ d: c.d, w: c.weight, b: c.bias }, Float64Array.from(u), c.Qd);
  return Math.sqrt(fu.reduce((s, v, i) => s + (v - u[i]) ** 2, 0));
}

const golden = loadGolden();

describe.each(golden.map((c) => [c.name, c] as const))('golden case %s', (_name, c) => {
  it.each(c.runs.map((r) => [r.name, r] as const))('run %s', async (_run, run: GoldenRun) => {
    const { f, Qd } = setup(c);
    const options: SolverOptions = { ...run.options, returnB: run.solver === 'broyden' };
    const result = await SOLVERS[run.solver](f, Qd, options);
    const uStar = await result.uStar.read();
    const uPrev = await result.uPrev.read();
    const converges = c.name.startsWith('contractive');
    const eps = run.options.eps ?? 1e-3;
    if (converges) {
      if (eps >= 1e-5 || run.options.returnFinal) {
        // eps 1e-6 sits at float32's rounding floor: there more steps are acceptable.
        expect(result.tnstep).toBe(run.tnstep);
      } else {
        expect(result.tnstep).toBeGreaterThanOrEqual(run.tnstep);
      }
      expect(maxAbsDiff(uStar, run.uStar)).toBeLessThan(1e-4);
      if (eps >= 1e-5 || run.options.returnFinal) expect(maxAbsDiff(uPrev, run.uPrev)).toBeLessThan(1e-4);
      if (run.solver === 'broyden' && eps >= 1e-3 && !run.options.returnFinal && result.B && run.Us && run.VTs && run.validMask) {
        expect(result.B.validMask).toEqual(run.validMask);
        const Us = await result.B.Us.read();
        const VTs = await result.B.VTs.read();
        const y = Float64Array.from({ length: run.uStar.length }, (_, i) => Math.sin(i + 1));
        const gpu = applyB(Us, VTs, result.B.validMask, y);
        const ref = applyB(run.Us, run.VTs, run.validMask, y);
        const err = Math.sqrt(gpu.reduce((s, v, i) => s + (v - ref[i]) ** 2, 0) / ref.reduce((s, v) => s + v * v, 0));
        expect(err).toBeLessThan(1e-2);
      }
    } else {
      const maxDepth = run.options.maxDepth ?? (run.solver === 'broyden' ? 50 : 100);
      const capped = run.solver === 'picard' ? run.tnstep === maxDepth + 1 : run.solver === 'broyden' && !run.options.ls ? run.tnstep === maxDepth : run.tnstep === 2 * maxDepth - 1;
      if (capped) expect(result.tnstep).toBe(run.tnstep);
      expect(residual(c, uStar)).toBeLessThanOrEqual(2 * run.absResidual + 1e-6);
    }
    expect(Number.isFinite(result.stats.absResidual)).toBe(true);
    result.dispose();
  });
});
