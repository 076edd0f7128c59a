// The package as a user gets it: `npm run build` once, `npm pack`, and the tarball unpacked into
// temporary consumer projects (outside the repo, so nothing resolves through the repo's own
// node_modules except the tools and `webgpu`, linked in where a consumer needs them). Checks the
// names survive the build, Node scripts print nothing on stderr, the types work for three strict
// TypeScript consumers without skipLibCheck, browser bundlers (esbuild, a Vite dev server) never
// see `webgpu` or `node:*`, and the README quickstart runs against dist/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { createServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS, withPageAt } from './helpers/browser';
import { ensureBuilt, runProcess, type ChildOutcome } from './helpers/child';
import { expectDefineLayerOutput, expectLayersOutput, expectParamsOutput, expectQuickstartOutput, expectTrainingOutput, readmeBlock } from './helpers/readme';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_MODULES = join(ROOT, 'node_modules');
const DIST = join(ROOT, 'dist');
/** The consumers' tools, pinned exactly in package.json (devDependencies). */
const TSC5 = join(NODE_MODULES, 'typescript5', 'bin', 'tsc');
const TSC7 = join(NODE_MODULES, 'typescript', 'bin', 'tsc');
// esbuild (pinned too) is used through its JS API.
const CHILD_TIMEOUT_MS = 60_000;

/** `command args` in `cwd`, killed after `timeoutMs`. */
function run(command: string, args: string[], cwd: string, timeoutMs = CHILD_TIMEOUT_MS): Promise<ChildOutcome> {
  return runProcess(command, args, cwd, timeoutMs);
}

let work: string;
let tarball: string;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), 'anchorax-package-'));
  const r = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`npm pack failed:\n${r.stderr}`);
  const [packed] = JSON.parse(r.stdout) as { filename: string }[];
  tarball = join(work, packed.filename);
}, 300_000);

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

/** A consumer project `name` with the tarball installed as node_modules/anchorax. */
function consumer(name: string, links: string[] = []): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, type: 'module', private: true }));
  const r = spawnSync('tar', ['xzf', tarball, '-C', join(dir, 'node_modules')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  renameSync(join(dir, 'node_modules', 'package'), join(dir, 'node_modules', 'anchorax'));
  for (const pkg of links) {
    mkdirSync(dirname(join(dir, 'node_modules', pkg)), { recursive: true });
    symlinkSync(join(NODE_MODULES, pkg), join(dir, 'node_modules', pkg), 'dir');
  }
  return dir;
}

/** Compiles a TS file to an ES module with esbuild (types stripped, imports left alone). */
function toModule(dir: string, file: string, source: string): string {
  writeFileSync(join(dir, `${file}.ts`), source);
  const outfile = join(dir, `${file}.mjs`);
  buildSync({ entryPoints: [join(dir, `${file}.ts`)], format: 'esm', outfile, logLevel: 'error' });
  return outfile;
}

describe('the packed tarball', () => {
  let files: string[];
  beforeAll(() => {
    files = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  });

  it('ships the builds, the types, README and LICENSE; not shaders/, sources or reference types', () => {
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/anchorax.js', 'dist/node.js', 'dist/require.cjs', 'dist/types/index.d.ts', 'dist/types/node.d.ts']) {
      expect(files).toContain(`package/${f}`);
    }
    expect(files.filter((f) => /^package\/(shaders|src|test)\//.test(f) || f.includes('/types/reference'))).toEqual([]);
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });

  it('declares webgpu as an optional peer dependency with a version range', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      dependencies?: Record<string, string>;
    };
    expect(pkg.peerDependencies?.webgpu).toMatch(/^\^\d+\.\d+\.\d+$/);
    expect(pkg.peerDependenciesMeta?.webgpu?.optional).toBe(true);
    expect(Object.keys(pkg.dependencies ?? {})).toEqual([]);
  });

  it('keeps @internal members out of the published declarations', () => {
    const types = join(DIST, 'types');
    const all = files.filter((f) => f.endsWith('.d.ts')).map((f) => readFileSync(join(types, f.slice('package/dist/types/'.length)), 'utf8'));
    expect(all.filter((s) => s.includes('@internal'))).toEqual([]);
    expect(all.join('\n')).not.toMatch(/\bregisterPlatform\b/);
  });
});

describe('the browser entry (dist/anchorax.js and what it imports)', () => {
  /** Module specifiers of static imports/exports and dynamic imports (a variable one by its name). */
  function specifiers(js: string): string[] {
    const found = new Set<string>();
    for (const re of [/\b(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']/g, /\bimport\s*\(\s*["'`]?([^"'`)]*)["'`]?\s*\)/g]) {
      for (const m of js.matchAll(re)) found.add(m[1]);
    }
    return [...found];
  }

  it('reaches only its own relative files: no webgpu, no node:*, not even as a string', () => {
    const seen = new Set<string>();
    const queue = [join(DIST, 'anchorax.js')];
    while (queue.length > 0) {
      const file = queue.pop() ?? '';
      if (seen.has(file)) continue;
      seen.add(file);
      const js = readFileSync(file, 'utf8');
      // Comments (TSDoc examples quote `from 'anchorax'`) are not imports.
      const specs = specifiers(js.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, ''));
      expect(specs.filter((s) => !s.startsWith('./')), file).toEqual([]);
      expect(js, file).not.toMatch(/["'](webgpu|node:[\w/]+)["']/);
      for (const s of specs) queue.push(resolve(dirname(file), s));
    }
    expect(seen.size).toBeGreaterThanOrEqual(2);
    // The Node entry is what imports them.
    const nodeJs = readFileSync(join(DIST, 'node.js'), 'utf8');
    expect(nodeJs).toMatch(/import\(["']webgpu["']\)/);
    expect(specifiers(nodeJs).filter((s) => !s.startsWith('./') && s !== 'webgpu' && !s.startsWith('node:'))).toEqual([]);
    // Dawn stays the user's dependency: no native addon or require() inside.
    expect(nodeJs).not.toMatch(/\.node["']|createRequire/);
  });

  it('carries the kernels\' build-time reflection, and wgsl_reflect only in a lazily imported chunk', () => {
    /** One of wgsl_reflect's parse-error messages: its parser is in the file that has it. */
    const REFLECT_MARK = 'Expected variable name';
    const js = readFileSync(join(DIST, 'anchorax.js'), 'utf8');
    const files = readdirSync(DIST).filter((n) => n.endsWith('.js'));
    const withParser = files.filter((n) => readFileSync(join(DIST, n), 'utf8').includes(REFLECT_MARK));
    expect(withParser).toHaveLength(1);
    // The library's kernels come with their reflection (the Control struct's, for one).
    expect(files.some((n) => readFileSync(join(DIST, n), 'utf8').includes('"skip_eval"'))).toBe(true);
    // No entry or chunk imports the parser's chunk statically: only import() reaches it.
    for (const n of files) {
      const statics = [...readFileSync(join(DIST, n), 'utf8').matchAll(/\b(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']\.\/([^"']+)["']/g)].map((m) => m[1]);
      expect(statics, n).not.toContain(withParser[0]);
    }
    expect(js).not.toContain(REFLECT_MARK);
  });

  it('bundles with esbuild --bundle --platform=browser', () => {
    const dir = consumer('esbuild-app');
    writeFileSync(join(dir, 'main.js'), "import { Engine, picard } from 'anchorax';\nexport const ready = [Engine.create, picard];\n");
    const r = buildSync({ entryPoints: [join(dir, 'main.js')], bundle: true, platform: 'browser', format: 'esm', outfile: join(dir, 'out.js'), logLevel: 'silent' });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    const out = readFileSync(join(dir, 'out.js'), 'utf8');
    expect(out).toContain('function picard');
    expect(out).not.toMatch(/["'](webgpu|node:[\w/]+)["']/);
  });

  it("keeps error names through an app's minifier (esbuild --minify)", async () => {
    const dir = consumer('esbuild-minified');
    writeFileSync(
      join(dir, 'main.js'),
      "import { ShapeError, OptionError, ShaderCompileError } from 'anchorax';\nexport const names = [new ShapeError('Qd', 'x'), new OptionError('options.eps', 'x'), new ShaderCompileError('source', 'x')].map((e) => e.name);\n",
    );
    const r = buildSync({ entryPoints: [join(dir, 'main.js')], bundle: true, minify: true, platform: 'browser', format: 'esm', outfile: join(dir, 'out.mjs'), logLevel: 'silent' });
    expect(r.errors).toEqual([]);
    // The bundle touches no browser API at load, so Node can import it.
    const { names } = (await import(pathToFileURL(join(dir, 'out.mjs')).href)) as { names: string[] };
    expect(names).toEqual(['ShapeError', 'OptionError', 'ShaderCompileError']);
  });
});

describe('in Node', () => {
  let dir: string;
  beforeAll(() => {
    dir = consumer('node-app', ['webgpu']);
  });

  it('keeps names: picard.name, error classes (anchorax/node is the same module)', async () => {
    const script = toModule(
      dir,
      'names',
      `import { picard, broyden, ShapeError, NoAdapterError, Engine } from 'anchorax';
import * as nodeEntry from 'anchorax/node';
const err = new ShapeError('Qd', 'must have shape [4]');
console.log(JSON.stringify([picard.name, broyden.name, Engine.name, err.name, err.constructor.name, NoAdapterError.name, String(err), nodeEntry.picard === picard]));
`,
    );
    const r = await run(process.execPath, [script], dir);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(['picard', 'broyden', 'Engine', 'ShapeError', 'ShapeError', 'NoAdapterError', 'ShapeError: Qd: must have shape [4]', true]);
  });

  it('leaves no NODEVICE_SELECT / VK_ICD_FILENAMES behind for child processes', async () => {
    const script = toModule(
      dir,
      'env',
      `import { Engine } from 'anchorax';
const keys = ['NODEVICE_SELECT', 'VK_ICD_FILENAMES'];
const before = keys.map((k) => process.env[k] ?? null);
const engine = await Engine.create();
console.log(JSON.stringify({ before, after: keys.map((k) => process.env[k] ?? null) }));
engine.destroy();
`,
    );
    const r = await run(process.execPath, [script], dir);
    expect(r.stderr).toBe('');
    const { before, after } = JSON.parse(r.stdout) as { before: (string | null)[]; after: (string | null)[] };
    expect(after).toEqual(before);
  });

  // Each console.log call as one JSON line, so multi-line messages stay one entry.
  const LOG_AS_JSON = "console.log = (...a) => process.stdout.write(JSON.stringify(a.map(String).join(' ')) + '\\n');\n";

  it.each([
    ['quickstart', expectQuickstartOutput],
    ['layers', expectLayersOutput],
    ['define-layer', expectDefineLayerOutput],
    ['params', expectParamsOutput],
    ['training', expectTrainingOutput],
  ])('runs the README %s block against dist/ with nothing on stderr', async (tag, check) => {
    const script = toModule(dir, tag, LOG_AS_JSON + readmeBlock(tag));
    const r = await run(process.execPath, [script], dir, 180_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    check(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as string));
  }, 240_000);

  interface SmokeRun {
    tnstep: number;
    stats: { converged: boolean; nonFinite: boolean };
    shape: number[];
    uStarIsTensor: boolean;
    uStar: number[];
  }

  it('each solver finds the fixed point (checked on the CPU in float64), quietly', async () => {
    copyFileSync(join(ROOT, 'test', 'dist', 'smoke.mjs'), join(dir, 'smoke.mjs'));
    const r = await run(process.execPath, ['smoke.mjs', '11', '24', '3'], dir);
    expect(r.stderr).toBe('');
    const line = r.stdout.split('\n').find((l) => l.startsWith('@@result '));
    expect(line, r.stdout).toBeDefined();
    const out = JSON.parse((line ?? '').slice('@@result '.length)) as {
      resolved: string; d: number; batch: number; w: number[]; b: number[]; qd: number[]; runs: Record<string, SmokeRun>; readbackCount: number;
      custom: { a: number[]; converged: boolean; uStar: number[] };
    };
    expect(out.resolved).toBe(pathToFileURL(join(dir, 'node_modules', 'anchorax', 'dist', 'node.js')).href);
    const { d, w, b, qd } = out;
    for (const name of ['picard', 'anderson', 'broyden']) {
      const u = out.runs[name].uStar;
      expect(out.runs[name].uStarIsTensor).toBe(true);
      expect(out.runs[name].shape).toEqual([out.batch, d]);
      expect(out.runs[name].stats.converged).toBe(true);
      let maxRes = 0;
      for (let row = 0; row < out.batch; row++) {
        for (let j = 0; j < d; j++) {
          let z = qd[row * d + j] + b[j];
          for (let k = 0; k < d; k++) z += u[row * d + k] * w[k * d + j];
          maxRes = Math.max(maxRes, Math.abs(Math.tanh(z) - u[row * d + j]));
        }
      }
      // eps 1e-5 on ‖f(u) − u‖ in float32; the float64 recomputation adds rounding of order 1e-7.
      expect(maxRes, name).toBeLessThan(5e-5);
      expect(Math.hypot(...u), name).toBeGreaterThan(0.5);
    }
    expect(out.readbackCount).toBeLessThan(4 * 40);
    // A defineLayer layer: its user WGSL is reflected at run time by the lazily loaded chunk.
    const { a, converged, uStar } = out.custom;
    expect(converged).toBe(true);
    expect(uStar).toHaveLength(out.batch * d);
    const customRes = uStar.reduce((m, v, k) => Math.max(m, Math.abs(Math.tanh(a[k % d] * v + qd[k]) - v)), 0);
    expect(customRes).toBeLessThan(5e-5);
    expect(Math.hypot(...uStar)).toBeGreaterThan(0.5);
  });

  it('require() either works or says the package is ESM-only', async () => {
    writeFileSync(
      join(dir, 'req.cjs'),
      "try { const m = require('anchorax'); console.log('ok ' + typeof m.Engine.create); } catch (e) { console.log('error ' + e.message); }\n",
    );
    const r = await run(process.execPath, ['req.cjs'], dir);
    expect(r.stdout.trim()).toMatch(/^(ok function|error anchorax is an ES module package \(ESM only\).*)$/);
  });

  it('without webgpu installed, Engine.create throws a NoAdapterError naming it', async () => {
    const bare = consumer('node-without-webgpu');
    const script = toModule(
      bare,
      'create',
      `import { Engine, NoAdapterError } from 'anchorax';
try { await Engine.create(); console.log('created'); } catch (e) { console.log(JSON.stringify([e instanceof NoAdapterError, e.argument, e.message])); }
`,
    );
    const r = await run(process.execPath, [script], bare);
    const [isNoAdapter, argument, message] = JSON.parse(r.stdout) as [boolean, string, string];
    expect(isNoAdapter).toBe(true);
    expect(argument).toBe('Engine.create');
    expect(message).toMatch(/`webgpu`.*\^0\.6\.\d.*npm install webgpu/);
  });
});

describe('types: strict consumers type-check the README quickstart without skipLibCheck', () => {
  it("the repo's own tsc is TypeScript 7 (typescript5's bin must not shadow it; `npm ci` relinks it)", () => {
    const r = spawnSync(join(NODE_MODULES, '.bin', 'tsc'), ['--version'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^Version 7\./);
  });

  // Checks besides the quickstart: the types must not degrade to `any`.
  const EXTRA = `import { Engine, implicitBlock, picard, type SolveResult, type SolverOptions } from 'anchorax';
export async function extra(engine: Engine, qd: Float32Array): Promise<number> {
  const f = implicitBlock(engine, { weight: new Float32Array(16), bias: new Float32Array(4) });
  const options: SolverOptions = { eps: 1e-5 };
  const r: SolveResult = await picard(f, engine.tensor(qd, [qd.length / 4, 4]), options);
  // @ts-expect-error tnstep is a number
  const bad: string = r.tnstep;
  // @ts-expect-error not a solver option
  await picard(f, engine.tensor(qd, [4]), { windowSise: 3 });
  void bad;
  return r.stats.nstep;
}
`;
  it.each([
    ['TypeScript 5.9 strict, DOM lib, NodeNext', TSC5, ['ES2022', 'DOM'], [], 'NodeNext', 'NodeNext'],
    ['TypeScript 5.9 strict, DOM lib, Bundler', TSC5, ['ES2022', 'DOM'], [], 'ESNext', 'Bundler'],
    ['TypeScript 7 strict, DOM lib, NodeNext', TSC7, ['ES2022', 'DOM'], [], 'NodeNext', 'NodeNext'],
    ['TypeScript 7 strict, lib es2022 and @types/node only', TSC7, ['ES2022'], ['node'], 'NodeNext', 'NodeNext'],
  ])('%s', (label, tsc, lib, types, module, moduleResolution) => {
    const dir = consumer(`types-${label.replace(/\W+/g, '-')}`, types.length > 0 ? ['@types/node'] : []);
    writeFileSync(join(dir, 'quickstart.ts'), readmeBlock('quickstart'));
    writeFileSync(join(dir, 'extra.ts'), EXTRA);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module, moduleResolution, strict: true, noEmit: true, skipLibCheck: false, lib, types },
        files: ['quickstart.ts', 'extra.ts'],
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8', timeout: 90_000 });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);
});

describe('a Vite dev server', () => {
  it('serves a page importing anchorax (no webgpu installed) that solves in headless Chromium, and gives browser advice without WebGPU', async () => {
    const dir = consumer('vite-app');
    writeFileSync(join(dir, 'index.html'), '<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script type="module" src="/main.ts"></script></body></html>\n');
    writeFileSync(
      join(dir, 'main.ts'),
      `import { Engine, implicitBlock, picard } from 'anchorax';
const out = window as unknown as { __result?: string };
try {
  const engine = await Engine.create();
  const d = 16;
  const f = implicitBlock(engine, { weight: new Float32Array(d * d).fill(0.01), bias: new Float32Array(d).fill(0.1) });
  const r = await picard(f, engine.tensor(new Float32Array(d).fill(0.5), [d]), { eps: 1e-5 });
  const u = await r.uStar.read();
  out.__result = JSON.stringify({ name: picard.name, converged: r.stats.converged, u0: u[0] });
} catch (e) {
  out.__result = JSON.stringify({ error: String(e), errorName: e instanceof Error ? e.name : '', hasGpu: 'gpu' in navigator });
}
`,
    );
    const server = await createServer({
      root: dir,
      configFile: false,
      envFile: false,
      logLevel: 'silent',
      cacheDir: join(dir, '.vite'),
      server: { host: '127.0.0.1', port: 0, strictPort: false, watch: null },
    });
    try {
      await server.listen();
      const url = server.resolvedUrls?.local[0];
      expect(url).toBeDefined();
      const open = (flags?: readonly string[]) =>
        withPageAt(`${url ?? ''}index.html`, async (page, consoleErrors) => {
          await page.waitForFunction(() => (window as unknown as { __result?: string }).__result !== undefined, { timeout: 90_000, polling: 100 });
          const json = await page.evaluate(() => (window as unknown as { __result?: string }).__result ?? '');
          type PageResult = { name?: string; converged?: boolean; u0?: number; error?: string; errorName?: string; hasGpu?: boolean };
          return { ...(JSON.parse(json) as PageResult), consoleErrors };
        }, flags === undefined ? {} : { flags });
      const result = await open();
      expect(result.error).toBeUndefined();
      expect(result.consoleErrors).toEqual([]);
      expect(result.name).toBe('picard');
      expect(result.converged).toBe(true);
      // Fixed point of u = tanh(0.01·Σu + 0.6) per component (all equal): u ≈ 0.5945.
      let u = 0;
      for (let i = 0; i < 200; i++) u = Math.tanh(0.16 * u + 0.6);
      expect(Math.abs((result.u0 ?? 0) - u)).toBeLessThan(1e-4);

      // Without WebGPU enabled the page is told what a browser user can do, not to run apt-get.
      const off = await open(CHROMIUM_FLAGS.filter((f) => f !== '--enable-unsafe-webgpu').concat('--disable-gpu'));
      expect(off.errorName).toBe('NoAdapterError');
      expect(off.error).not.toMatch(/apt-get|npm install/);
      // Chromium without the flag still has navigator.gpu (no adapter): the advice names chrome://gpu.
      expect(off.error).toMatch(off.hasGpu === true ? /chrome:\/\/gpu/ : /navigator\.gpu is undefined/);
    } finally {
      await server.close();
    }
  }, 180_000);
});
