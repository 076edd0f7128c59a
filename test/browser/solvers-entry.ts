/// <reference types="@webgpu/types" />
// Browser entry for test/solvers.browser.test.ts: the library's own WGSL kernels, run through
// `Engine.create()` on navigator.gpu in headless Chromium, on one golden case. The golden file is
// bundled as text (`?raw`, no node:fs in a page; also spares tsc typing a 2.8 MB JSON literal);
// only the case's inputs are used here, the expected outputs are compared in Node.
import goldenText from '../fixtures/golden.json?raw';
import { Engine, anderson, broyden, picard, type SolveStats, type SolverOptions, implicitBlock } from '../../src';

export const BROWSER_CASE = 'contractive_d32_b4';
/** Golden runs of BROWSER_CASE solved in the page: the defaults, Broyden with line search, Anderson m=5. */
export const BROWSER_RUNS = ['picard', 'anderson', 'anderson_m5_beta0.8', 'broyden', 'broyden_ls'] as const;
export type BrowserRunName = (typeof BROWSER_RUNS)[number];

export interface BrowserRun {
  name: BrowserRunName;
  solver: 'picard' | 'anderson' | 'broyden';
  /** The options the page passed to the solver. */
  options: SolverOptions;
  tnstep: number;
  uStar: number[];
  uPrev: number[];
  stats: SolveStats;
  /** engine.readbackCount spent by this solve. */
  readbacks: number;
  /**
   * WebGPU validation/internal errors raised during this run (error scopes around the solve and
   * its reads). Chromium logs these as console *warnings*, so consoleErrors would not show them,
   * and the library does not surface them either: a kernel whose pipeline is invalid just leaves
   * its command buffers unexecuted.
   */
  gpuErrors: string[];
}

export interface SolversBrowserResult {
  hasNavigatorGpu: boolean;
  /** engine.device.adapterInfo where the browser has it, else null. */
  adapter: { vendor: string; architecture: string; device: string; description: string } | null;
  readbackCount: number;
  runs: BrowserRun[];
  /** `uncapturederror` events of the device (errors outside the per-run scopes). */
  uncapturedErrors: string[];
}

interface RawRun {
  kwargs: Record<string, unknown>;
}
interface RawCase {
  name: string;
  d: number;
  batch: number;
  W: number[];
  b: number[];
  Qd: number[];
  runs: Record<string, RawRun>;
}

const SOLVERS = { picard, anderson, broyden } as const;

function solverOf(name: BrowserRunName): BrowserRun['solver'] {
  if (name.startsWith('picard')) return 'picard';
  if (name.startsWith('anderson')) return 'anderson';
  return 'broyden';
}

/** The original's kwargs as SolverOptions; only the ones these runs use (anything else throws). */
function optionsOf(kwargs: Record<string, unknown>): SolverOptions {
  const o: SolverOptions = {};
  for (const [key, value] of Object.entries(kwargs)) {
    if (key === 'window_size' && typeof value === 'number') o.windowSize = value;
    else if (key === 'mixing_param' && typeof value === 'number') o.mixingParam = value;
    else if (key === 'ls' && typeof value === 'boolean') o.ls = value;
    else throw new Error(`solvers-entry: golden kwarg ${key}=${String(value)} is not mapped`);
  }
  return o;
}

export default async function solversInBrowser(): Promise<SolversBrowserResult> {
  const hasNavigatorGpu = 'gpu' in navigator;
  if (!hasNavigatorGpu) throw new Error('navigator.gpu is missing (WebGPU disabled or insecure context)');
  const golden = JSON.parse(goldenText) as { cases: RawCase[] };
  const c = golden.cases.find((x) => x.name === BROWSER_CASE);
  if (c === undefined) throw new Error(`golden case ${BROWSER_CASE} not found`);

  const engine = await Engine.create();
  const uncapturedErrors: string[] = [];
  engine.device.addEventListener('uncapturederror', (event) => {
    uncapturedErrors.push((event as GPUUncapturedErrorEvent).error.message);
  });
  try {
    const f = implicitBlock(engine, { weight: Float32Array.from(c.W), bias: Float32Array.from(c.b) });
    const Qd = engine.tensor(Float32Array.from(c.Qd), [c.batch, c.d]);
    const runs: BrowserRun[] = [];
    for (const name of BROWSER_RUNS) {
      const raw = c.runs[name];
      if (raw === undefined) throw new Error(`golden case ${BROWSER_CASE} has no run ${name}`);
      const solver = solverOf(name);
      const options = optionsOf(raw.kwargs);
      engine.device.pushErrorScope('internal');
      engine.device.pushErrorScope('validation');
      const before = engine.readbackCount;
      const result = await SOLVERS[solver](f, Qd, options);
      const readbacks = engine.readbackCount - before;
      const uStar = Array.from(await result.uStar.read());
      const uPrev = Array.from(await result.uPrev.read());
      result.dispose();
      const gpuErrors: string[] = [];
      for (let i = 0; i < 2; i++) {
        const error = await engine.device.popErrorScope();
        if (error !== null) gpuErrors.push(error.message);
      }
      runs.push({ name, solver, options, tnstep: result.tnstep, uStar, uPrev, stats: result.stats, readbacks, gpuErrors });
    }
    // GPUDevice.adapterInfo is recent (Chrome 131): read it as possibly absent.
    const info: GPUAdapterInfo | undefined = (engine.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    return {
      hasNavigatorGpu,
      adapter:
        info === undefined
          ? null
          : { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
      readbackCount: engine.readbackCount,
      runs,
      uncapturedErrors,
    };
  } finally {
    engine.destroy();
  }
}
