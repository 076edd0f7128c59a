// The same WGSL kernels in headless Chromium (navigator.gpu, not Dawn): one golden case solved in
// the page by test/browser/solvers-entry.ts, compared here against the original's float64 outputs
// with the float32 tolerances of test/solvers.golden.test.ts.
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SolversBrowserResult } from './browser/solvers-entry';
import { runInChromium } from './helpers/browser';
import { maxAbsDiff } from './helpers/engine';
import { goldenRun, loadGolden, type GoldenCase } from './helpers/golden';

const ENTRY = fileURLToPath(new URL('./browser/solvers-entry.ts', import.meta.url));
const CASE = 'contractive_d32_b4';
/** What the page must have run, in order (defaults, Anderson m=5 β=0.8, Broyden with line search). */
const EXPECTED_RUNS = ['picard', 'anderson', 'anderson_m5_beta0.8', 'broyden', 'broyden_ls'];

function goldenCase(name: string): GoldenCase {
  const c = loadGolden().find((x) => x.name === name);
  if (c === undefined) throw new Error(`golden case ${name} missing`);
  return c;
}

describe(`solvers in headless Chromium (golden case ${CASE})`, () => {
  const c = goldenCase(CASE);
  let page: SolversBrowserResult;
  let consoleErrors: string[];

  beforeAll(async () => {
    ({ result: page, consoleErrors } = await runInChromium<SolversBrowserResult>(ENTRY, { timeoutMs: 60_000 }));
  }, 90_000);

  it('ran on navigator.gpu without page errors', () => {
    expect(consoleErrors).toEqual([]);
    expect(page.uncapturedErrors).toEqual([]);
    expect(page.hasNavigatorGpu).toBe(true);
    expect(page.runs.map((r) => r.name)).toEqual(EXPECTED_RUNS);
    if (page.adapter !== null) {
      expect(page.adapter.vendor.length + page.adapter.architecture.length + page.adapter.description.length).toBeGreaterThan(0);
    }
    // At least one readback per solve (the convergence flag) plus the two result reads.
    expect(page.readbackCount).toBeGreaterThanOrEqual(3 * EXPECTED_RUNS.length);
    expect(page.readbackCount).toBe(page.runs.reduce((s, r) => s + r.readbacks, 0) + 2 * page.runs.length);
  });

  it.each(EXPECTED_RUNS)('run %s matches the golden fixture', (name) => {
    const run = page.runs.find((r) => r.name === name);
    expect(run, `the page did not run ${name}`).toBeDefined();
    if (run === undefined) return;
    const gold = goldenRun(c, name);
    // First, so that a kernel the browser rejects is named instead of a wrong tnstep.
    expect(run.gpuErrors).toEqual([]);
    expect(run.solver).toBe(gold.solver);
    // The page mapped the original's kwargs itself; they must agree with the Node loader's mapping.
    expect(run.options).toEqual(gold.options);
    expect(run.uStar).toHaveLength(c.rows * c.d);
    expect(run.uPrev).toHaveLength(c.rows * c.d);
    expect(run.tnstep).toBe(gold.tnstep);
    expect(maxAbsDiff(run.uStar, gold.uStar)).toBeLessThan(1e-4);
    expect(maxAbsDiff(run.uPrev, gold.uPrev)).toBeLessThan(1e-4);
    expect(run.stats.converged).toBe(true);
    expect(run.stats.nonFinite).toBe(false);
    expect(run.stats.absResidual).toBeLessThan(1e-3);
    expect(run.readbacks).toBeGreaterThan(0);
  });
});
