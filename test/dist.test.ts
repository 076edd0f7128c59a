// The built package (`npm run build` → dist/) as a user gets it: a plain `node` process imports
// `anchorax` by name (self-reference through package.json "exports") and solves a problem whose
// fixed point is checked here on the CPU; a TypeScript consumer type-checks against
// dist/types; the bundle carries wgsl_reflect inside and leaves `webgpu` to the user.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST_DTS, DIST_JS, ROOT, ensureBuilt, runNode, type ChildOutcome } from './helpers/child';

const SMOKE = join(ROOT, 'test', 'dist', 'smoke.mjs');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const SMOKE_TIMEOUT_MS = 60_000;

beforeAll(ensureBuilt, 300_000);

interface SmokeRun {
  tnstep: number;
  stats: { nstep: number; absResidual: number; converged: boolean; nonFinite: boolean };
  uStarIsTensor: boolean;
  shape: number[];
  uStar: number[];
}

interface SmokeOutput {
  resolved: string;
  seed: number;
  d: number;
  batch: number;
  w: number[];
  b: number[];
  qd: number[];
  runs: Record<string, SmokeRun>;
  readbackCount: number;
}

/** f(u) = tanh(u @ w + qd + b) for [batch, d] row-major states, in float64. */
function tanhBlock(d: number, w: number[], b: number[], qd: number[], u: number[]): Float64Array {
  const out = new Float64Array(u.length);
  for (let r = 0; r < u.length / d; r++) {
    for (let j = 0; j < d; j++) {
      let z = qd[r * d + j] + b[j];
      for (let k = 0; k < d; k++) z += u[r * d + k] * w[k * d + j];
      out[r * d + j] = Math.tanh(z);
    }
  }
  return out;
}

describe('dist/anchorax.js in a plain node process', () => {
  let outcome: ChildOutcome;
  let out: SmokeOutput;

  beforeAll(async () => {
    outcome = await runNode([SMOKE, '11', '24', '3'], SMOKE_TIMEOUT_MS);
    const line = outcome.stdout.split('\n').find((l) => l.startsWith('@@result '));
    if (line !== undefined) out = JSON.parse(line.slice('@@result '.length)) as SmokeOutput;
  }, SMOKE_TIMEOUT_MS + 30_000);

  it('exits 0 on its own within 60 s', () => {
    const why = `exit ${outcome.code} signal ${outcome.signal} after ${outcome.ms} ms\n${outcome.stderr.slice(-3000)}`;
    expect(outcome.timedOut, why).toBe(false);
    expect(outcome.code, why).toBe(0);
    expect(out, `no @@result line in:\n${outcome.stdout.slice(-2000)}`).toBeDefined();
  });

  it("resolves 'anchorax' to dist/anchorax.js through package.json exports", () => {
    expect(out.resolved).toBe(pathToFileURL(DIST_JS).href);
  });

  it.each(['picard', 'anderson', 'broyden'])('%s finds the fixed point (|f(u) − u| checked on the CPU)', (name) => {
    const run = out.runs[name];
    expect(run, `no ${name} run`).toBeDefined();
    expect(run.uStarIsTensor).toBe(true);
    expect(run.shape).toEqual([out.batch, out.d]);
    expect(run.uStar).toHaveLength(out.batch * out.d);
    expect(run.stats.converged).toBe(true);
    expect(run.stats.nonFinite).toBe(false);
    expect(run.tnstep).toBeGreaterThan(1);
    const fu = tanhBlock(out.d, out.w, out.b, out.qd, run.uStar);
    const maxRes = fu.reduce((m, v, i) => Math.max(m, Math.abs(v - run.uStar[i])), 0);
    const normRes = Math.sqrt(fu.reduce((s, v, i) => s + (v - run.uStar[i]) ** 2, 0));
    // eps 1e-5 on ‖f(u) − u‖ in float32; the float64 recomputation adds rounding of order 1e-7.
    expect(maxRes).toBeLessThan(5e-5);
    expect(normRes).toBeLessThan(5e-5);
    // Not a trivial point: f(0) = tanh(qd + b) is far from 0 for this data.
    expect(Math.sqrt(run.uStar.reduce((s, v) => s + v * v, 0))).toBeGreaterThan(0.5);
  });

  it('reads back only a few times per solve', () => {
    expect(out.readbackCount).toBeGreaterThanOrEqual(3 * 2);
    expect(out.readbackCount).toBeLessThan(3 * 40);
  });
});

describe('dist bundle contents', () => {
  /** Module specifiers of static imports/exports and literal dynamic imports. */
  function importedSpecifiers(js: string): string[] {
    const found = new Set<string>();
    const patterns = [
      /\b(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']/g,
      /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    ];
    for (const re of patterns) for (const m of js.matchAll(re)) found.add(m[1]);
    return [...found];
  }

  it('bundles wgsl_reflect (a devDependency) and imports nothing but webgpu and node: builtins', () => {
    const js = readFileSync(DIST_JS, 'utf8');
    const specifiers = importedSpecifiers(js);
    expect(specifiers.filter((s) => s.includes('wgsl_reflect'))).toEqual([]);
    expect(specifiers.filter((s) => s !== 'webgpu' && !s.startsWith('node:'))).toEqual([]);
    // Its parser is inside (one of wgsl_reflect's parse-error messages).
    expect(js).toContain('Expected variable name');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain('wgsl_reflect');
  });

  it('leaves webgpu (Dawn) external: no native addon in the bundle', () => {
    const js = readFileSync(DIST_JS, 'utf8');
    expect(js).not.toMatch(/\.node["']/);
    expect(js).not.toContain('createRequire');
    expect(js).toMatch(/["']webgpu["']/);
  });
});

describe('dist/types', () => {
  it('index.d.ts exists and exports Engine and the solvers', () => {
    expect(existsSync(DIST_DTS)).toBe(true);
    const dts = readFileSync(DIST_DTS, 'utf8');
    expect(dts).toMatch(/export\s*\{[^}]*\bEngine\b[^}]*\}\s*from\s*['"]\.\/engine\.js['"]/);
    for (const name of ['picard', 'anderson', 'broyden']) expect(dts).toMatch(new RegExp(`export\\s*\\{\\s*${name}\\s*\\}`));
    expect(existsSync(join(ROOT, 'dist', 'types', 'engine.d.ts'))).toBe(true);
  });

  // A consumer that type-checks the declarations themselves (skipLibCheck off). Its two
  // expect-error directives fail the check if the types degrade to `any` (an unresolved import).
  const CONSUMER = `import { Engine, picard, broyden, Tensor, type SolveResult, type SolverOptions } from 'anchorax';

export async function solve(w: Float32Array, b: Float32Array, qd: Float32Array, d: number): Promise<number> {
  const engine: Engine = await Engine.create({ powerPreference: 'low-power' });
  const f = engine.implicitBlock({ w, b });
  const Qd: Tensor = engine.tensor(qd, [qd.length / d, d]);
  const options: SolverOptions = { eps: 1e-5, ls: true };
  const r: SolveResult = await broyden(f, Qd, options);
  const u: Float32Array = await r.uStar.read();
  // @ts-expect-error tnstep is a number
  const bad: string = r.tnstep;
  // @ts-expect-error not a solver option
  await picard(f, Qd, { windowSise: 3 });
  void bad;
  r.dispose();
  engine.destroy();
  return u.length + r.stats.nstep;
}
`;

  // The consumer lives outside the repo (so the repo's own typecheck never sees it) and gets the
  // package as an installed dependency would be: node_modules/anchorax → the repo.
  let consumerRoot: string;
  beforeAll(() => {
    consumerRoot = mkdtempSync(join(tmpdir(), 'anchorax-consumer-'));
    mkdirSync(join(consumerRoot, 'node_modules'));
    symlinkSync(ROOT, join(consumerRoot, 'node_modules', 'anchorax'), 'dir');
  });
  afterAll(() => {
    if (consumerRoot !== undefined) rmSync(consumerRoot, { recursive: true, force: true });
  });

  it.each([
    ['NodeNext', 'NodeNext'],
    ['Bundler', 'ESNext'],
  ])('type-checks a consumer with moduleResolution %s', (moduleResolution, module) => {
    const dir = join(consumerRoot, moduleResolution.toLowerCase());
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${moduleResolution.toLowerCase()}`, type: 'module', private: true }));
    writeFileSync(join(dir, 'consumer.ts'), CONSUMER);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module,
          moduleResolution,
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          // TypeScript's lib.dom has the WebGPU types; @webgpu/types on top would clash.
          lib: ['ES2022', 'DOM'],
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    const r = spawnSync(TSC, ['-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  }, 90_000);
});
