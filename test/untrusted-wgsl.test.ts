// WGSL the library did not write (defineLayer): a layer that never returns ends in TimeoutError
// with options.timeoutMs (in a child process, killed hard if it hangs), syntax the library's own
// reader must survive (expressions in attributes, trailing commas, unclosed comments), parameter
// names that would clash with WGSL or the library, compile time linear in the source size, and
// parameters freed when defineLayer fails.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnchoraxError,
  LimitError,
  OptionError,
  ShaderCompileError,
  defineLayer,
  picard,
  type Engine,
  type LayerDefinition,
} from '../src';
import { createTestEngine, maxAbsDiff, rejectsWith } from './helpers/engine';
import { runProcess } from './helpers/child';
import { layerForward } from './helpers/layers';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const ADJOINT = /* wgsl */ `
fn grad_input(row: u32, i: u32) -> f32 { return 0.0; }
fn grad_qd(row: u32, i: u32) -> f32 { return 0.0; }
fn grad_a(k: u32) -> f32 { return 0.0; }`;
const FORWARD = 'fn forward(row: u32, i: u32) -> f32 { return a[i] * state(row, i); }';

const definition = (overrides: Partial<LayerDefinition> = {}): LayerDefinition => ({
  featureSize: 2,
  params: { a: [0.5, 2] },
  forward: FORWARD,
  adjoint: ADJOINT,
  ...overrides,
});

const rejection = (overrides: Partial<LayerDefinition>): Promise<AnchoraxError> => rejectsWith(defineLayer(engine, definition(overrides)));

describe('options.timeoutMs', () => {
  it('a layer that never returns: TimeoutError, the engine unusable with a reason, the JS thread free, destroy() immediate', async () => {
    // vite-node runs the TypeScript fixture; SIGKILL after 100 s (a hang is a failure, not a stuck suite).
    const run = await runProcess(resolve(ROOT, 'node_modules/.bin/vite-node'), ['test/fixtures/runaway-solve.ts'], ROOT, 100_000);
    expect(run.timedOut, `child hung:\n${run.stdout}\n${run.stderr}`).toBe(false);
    expect(run.code, run.stderr).toBe(0);
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, run.stdout + run.stderr).toBeDefined();
    const report = JSON.parse((line as string).slice(7)) as {
      timeoutMs: number;
      elapsedMs: number;
      ticks: number;
      error: { name: string; argument: string; message: string };
      later: { name: string; message: string };
      destroyMs: number;
    };
    expect(report.error.name).toBe('TimeoutError');
    expect(report.error.argument).toBe('options.timeoutMs');
    expect(report.elapsedMs).toBeGreaterThanOrEqual(report.timeoutMs);
    // A 50 ms interval kept firing while the kernel ran: nothing blocked the event loop.
    expect(report.ticks).toBeGreaterThanOrEqual(5);
    expect(report.later.name).toBe('DeviceLostError');
    expect(report.later.message).toMatch(/unusable.*timeoutMs = 1500/);
    expect(report.destroyMs).toBeLessThan(1000);
  }, 120_000);

  it('is validated, and a solve within it is an ordinary solve', async () => {
    const f = await defineLayer(engine, definition());
    const Qd = engine.tensor([0.3, -0.2], [2]);
    for (const bad of [0, -5, Number.NaN, Infinity, 2 ** 31, '100']) {
      const err = await picard(f, Qd, { timeoutMs: bad as number }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OptionError);
      expect((err as OptionError).argument).toBe('options.timeoutMs');
    }
    const limited = await picard(f, Qd, { timeoutMs: 60_000, eps: 1e-7 });
    const plain = await picard(f, Qd, { eps: 1e-7 });
    expect(limited.stats.converged).toBe(true);
    expect(await limited.uStar.read()).toEqual(await plain.uStar.read());
    engine.zeros([2]).dispose(); // still usable
  });
});

describe('user WGSL the reflector could not read', () => {
  it('an expression in @binding: the declaration is named, with its line in the user source', async () => {
    const err = await rejection({ forward: `const K = 2u;\n@group(0) @binding(4+5) var<storage, read> c: array<f32>;\n${FORWARD}` });
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect(err.argument).toBe('forward');
    expect(err.message).toMatch(/forward WGSL line 2: declares the binding "c" \(@group\(0\) @binding\(4\+5\)\)/);
  });

  it('trailing commas everywhere WGSL allows them: the layer builds and computes', async () => {
    const f = await defineLayer(engine, definition({
      forward: /* wgsl */ `
struct Pair { x: f32, y: f32, }
alias Index = u32;
@must_use
fn scale(p: Pair,) -> f32 { return p.x * p.y; }
fn forward(row: Index, i: Index,) -> f32 {
  let v = array<f32, 2,>(a[i], state(row, i),);
  return scale(Pair(v[0], v[1],),);
}`,
    }));
    const out = await layerForward(f, Float64Array.from([0.25, -1]), new Float64Array(2), 1);
    expect(maxAbsDiff(out, [0.125, -2])).toBeLessThan(1e-7);
  });

  it('syntax errors Dawn reports are located in the user source; unclosed comments and brackets too', async () => {
    const bad = await rejection({ forward: `fn helper(x: f32) -> f32 { return x; }\n@must_use(,) fn other() -> f32 { return 1.0; }\n${FORWARD}` });
    expect(bad).toBeInstanceOf(ShaderCompileError);
    expect(bad.message).toMatch(/forward WGSL line 2/);
    const comment = await rejection({ forward: `${FORWARD}\n/* the end` });
    expect(comment.argument).toBe('forward');
    expect(comment.message).toMatch(/forward WGSL line 2: this block comment/);
    const brace = await rejection({ adjoint: `${ADJOINT}\nfn extra() -> f32 {\n  return 1.0;\n` });
    expect(brace.argument).toBe('adjoint');
    expect(brace.message).toMatch(/adjoint WGSL line 5: this '\{' is never closed/);
    const unfinished = await rejection({ forward: `${FORWARD}\nconst K = ` });
    expect(unfinished.message).toMatch(/forward WGSL line 2: the declaration starting with 'const' is not finished/);
    const library = await rejection({ forward: `${FORWARD}\nfn anchorax_forward() {}` });
    expect(library.message).toMatch(/forward WGSL line 2: declares "anchorax_forward", a name of the library's WGSL/);
  });

  it('directives opening the user source open the composed WGSL (and keep their lines in errors)', async () => {
    const f = await defineLayer(engine, definition({ forward: `// uniformity checks off\ndiagnostic(off, derivative_uniformity);\n${FORWARD}` }));
    expect(maxAbsDiff(await layerForward(f, Float64Array.from([1, 1]), new Float64Array(2), 1), [0.5, 2])).toBe(0);
    const err = await rejection({ forward: `\nenable no_such_extension;\n${FORWARD}` });
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect(err.message).toMatch(/forward WGSL line 2:/);
  });
});

describe('parameter names', () => {
  it('WGSL keywords, reserved words, names of the library WGSL and invalid identifiers are rejected as params.<name>', async () => {
    // loop: keyword; NULL, demote: reserved; f32, array, storage, read: the declaration's words;
    // gate, grid_stride, anchorax_sizes, vec3u: the library's WGSL; input, output, qd: grad_<name>
    // would clash; forward: the user's entry.
    const names = ['loop', 'NULL', 'demote', 'f32', 'array', 'storage', 'read', 'gate', 'grid_stride', 'rows', 'vec3u', 'input', 'output', 'qd', 'forward', 'a-b', '_x', '1a', 'é'];
    for (const name of names) {
      const err = await rejection({ params: { [name]: [1, 2] } });
      expect(err, name).toBeInstanceOf(OptionError);
      expect(err.argument).toBe(`params.${name}`);
    }
    // An ordinary name, a built-in function's name the library does not use: accepted.
    const ok = await defineLayer(engine, definition({ params: { sinh: [1, 1] }, forward: 'fn forward(row: u32, i: u32) -> f32 { return sinh[i]; }', adjoint: ADJOINT.replace('grad_a', 'grad_sinh') }));
    expect(Object.keys(ok.params)).toEqual(['sinh']);
  });
});

describe('compile time', () => {
  /** A forward of about `kb` KB: many small helper functions (salted so no cache helps). */
  function bigForward(kb: number, salt: number): string {
    const lines: string[] = [];
    let size = 0;
    for (let k = 0; size < kb * 1024; k++) {
      const fn = `fn helper${k}(x: f32) -> f32 {\n  let y = x * ${salt}.5 + ${k}.0;\n  return tanh(y) * 0.5;\n}`;
      lines.push(fn);
      size += fn.length + 1;
    }
    return `${lines.join('\n')}\nfn forward(row: u32, i: u32) -> f32 { return helper0(a[i] * state(row, i)); }`;
  }
  /** Wall and CPU time (ms) of one defineLayer; CPU time, unlike wall time, hardly depends on what else the machine runs. */
  async function timed(kb: number, salt: number): Promise<{ wall: number; cpu: number }> {
    const start = performance.now();
    const cpu = process.cpuUsage();
    await defineLayer(engine, definition({ forward: bigForward(kb, salt) }));
    const used = process.cpuUsage(cpu);
    return { wall: performance.now() - start, cpu: (used.user + used.system) / 1000 };
  }
  async function best(kb: number, salts: number[]): Promise<{ wall: number; cpu: number }> {
    const runs: { wall: number; cpu: number }[] = [];
    for (const salt of salts) runs.push(await timed(kb, salt));
    return { wall: Math.min(...runs.map((r) => r.wall)), cpu: Math.min(...runs.map((r) => r.cpu)) };
  }

  it('grows linearly with the source (50 KB vs 200 KB), with a ceiling, and never holds the event loop long', async () => {
    await timed(5, 1); // the library's own kernels and the device warm up
    let last = performance.now();
    let longestBlock = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longestBlock = Math.max(longestBlock, now - last);
      last = now;
    }, 10);
    const small = await best(50, [2, 3]);
    const large = await best(200, [4, 5]);
    clearInterval(ticker);
    const measured = `50 KB: ${small.cpu.toFixed(0)} ms CPU, 200 KB: ${large.cpu.toFixed(0)} ms CPU, ${large.wall.toFixed(0)} ms wall; longest block ${longestBlock.toFixed(0)} ms`;
    // Linear growth gives 4× (plus noise at these ~0.1 s sizes); the quadratic cost it replaced gave ~16×.
    expect(large.cpu / small.cpu, measured).toBeLessThan(8);
    expect(large.wall, measured).toBeLessThan(15_000);
    // Before: 13 s in one synchronous parse at 200 KB; now each step (one scan, one Dawn parse) is short.
    expect(longestBlock, measured).toBeLessThan(4_000);
  }, 120_000);
});

describe('parameters are freed when defineLayer fails', () => {
  it('after a compile error or an unused parameter, repeated failures allocate nothing more', async () => {
    const values = new Float32Array(1000).fill(1);
    const failures: Partial<LayerDefinition>[] = [
      { params: { a: [0.5, 2], big: values }, adjoint: `${ADJOINT}\nfn grad_big(k: u32) -> f32 { return 0.0; }` }, // big: forward never reads it
      { params: { a: [0.5, 2], big: values }, forward: FORWARD.replace('state(row, i)', 'state(row, i) +') },
    ];
    for (const failure of failures) {
      await rejection(failure);
      const after = engine.memory.allocatedBytes;
      for (let k = 0; k < 3; k++) await rejection(failure);
      expect(engine.memory.allocatedBytes).toBe(after);
    }
  });

  it('too many parameters for the device: LimitError before anything is uploaded', async () => {
    const limit = engine.device.limits.maxStorageBuffersPerShaderStage;
    const params = Object.fromEntries(Array.from({ length: limit }, (_, k) => [`p${k}`, new Float32Array(512)]));
    const before = engine.memory.allocatedBytes;
    const err = await rejection({ params, forward: 'fn forward(row: u32, i: u32) -> f32 { return 0.0; }', adjoint: ADJOINT });
    expect(err).toBeInstanceOf(LimitError);
    expect(err.argument).toBe('params');
    expect(engine.memory.allocatedBytes).toBe(before);
  });
});
