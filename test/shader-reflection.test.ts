// The build-time reflection (scripts/vite-wgsl-reflect.ts → `virtual:anchorax-shaders`) against
// what wgsl_reflect reads at run time from the very sources the library compiles: every kernel,
// every @compute entry point, every binding and uniform member; the Control struct; and the
// composition of each source from the file src/gpu/shader-files.ts names and the pieces its
// `//! include` lines declare (test/shader-includes.test.ts tests the resolver itself). Then, on
// the device, a kernel bound from its build-time reflection against the same WGSL reflected when
// compiled.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KERNELS, SOURCES } from 'virtual:anchorax-shaders';
import { ResourceType, WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  add,
  anderson,
  broyden,
  conv2d,
  defineLayer,
  dropout,
  gdeq,
  groupNorm,
  ift,
  jfb,
  layerNorm,
  linear,
  mse,
  picard,
  Qd,
  relu,
  sequential,
  softmaxCrossEntropy,
  tanh,
  type Engine,
  adam,
  implicitBlock,
  sgd,
} from '../src';
import { runtimeReflectionCount } from '../src/gpu/kernel';
import { builtReflection, CONTROL_LAYOUT, CONTROL_HEADER_LAYOUT, CONTROL_WGSL, CUSTOM_LAYER_WGSL, SHADERS, type ShaderName } from '../src/gpu/shaders';
import { KERNEL_FILES, SOURCE_FILES, SUBGROUP_PIECES, type SourceName } from '../src/gpu/shader-files';
import { resolveIncludes } from '../scripts/wgsl-includes';
import { subgroupSource } from '../src/gpu/shaders';
import { createTestEngine, randomArray, rng } from './helpers/engine';

const SHADER_DIR = fileURLToPath(new URL('../shaders/', import.meta.url));
const names = Object.keys(KERNEL_FILES) as ShaderName[];
const sourceNames = Object.keys(SOURCE_FILES) as SourceName[];
const fileText = (path: string): string => readFileSync(`${SHADER_DIR}${path}`, 'utf8');
const readShader = (path: string): string | undefined => (existsSync(`${SHADER_DIR}${path}`) ? fileText(path) : undefined);
/** The include directives of a file, read here with a regular expression of the test's own. */
const directives = (path: string): string[] => [...fileText(path).matchAll(/^\/\/! include (\S+)$/gm)].map((m) => m[1] ?? '');

/**
 * `source` is `file` composed with its includes: the files in the resolver's order joined with
 * newlines, `file` last, each file once, each include before the file that includes it, and no
 * file that nothing later includes. Returns the order.
 */
function expectComposed(file: string, source: string): string[] {
  const order = resolveIncludes(file, readShader);
  expect(order.at(-1)).toBe(file);
  expect(new Set(order).size).toBe(order.length);
  expect(source === order.map(fileText).join('\n'), `${file}: composed text`).toBe(true);
  order.forEach((path, i) => {
    for (const include of directives(path)) {
      const at = order.indexOf(include);
      expect(at >= 0 && at < i, `${path} includes ${include}: it comes first`).toBe(true);
    }
    if (i < order.length - 1) {
      expect(order.slice(i + 1).some((later) => directives(later).includes(path)), `${path} is included by a later file`).toBe(true);
    }
  });
  return order;
}

describe('build-time reflection equals wgsl_reflect at run time', () => {
  it('covers every kernel of the recipes, and SHADERS serves exactly those', () => {
    expect(Object.keys(KERNELS).sort()).toEqual([...names].sort());
    expect(Object.keys(SHADERS).sort()).toEqual([...names].sort());
    expect(names.length).toBeGreaterThan(30);
  });

  it.each(names)('%s: composed from its file and the pieces it includes', (name) => {
    expectComposed(KERNEL_FILES[name], SHADERS[name]);
  });

  it('every .wgsl under shaders/ is part of a source; none lists its pieces in a header comment', () => {
    const used = new Set([
      ...[...names.map((n) => KERNEL_FILES[n]), ...sourceNames.map((n) => SOURCE_FILES[n])].flatMap((f) => resolveIncludes(f, readShader)),
      ...Object.values(SUBGROUP_PIECES),
    ]);
    const files = readdirSync(SHADER_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.wgsl')).map((f) => f.split('\\').join('/'));
    expect(files.length).toBeGreaterThan(40);
    expect(files.filter((f) => !used.has(f))).toEqual([]);
    expect(files.filter((f) => /^\/\/ \((includes|needs) /m.test(fileText(f)))).toEqual([]);
  });

  it('lib/dropout.wgsl declares its own needs: gate and rng come first wherever it goes', () => {
    expect(directives('lib/dropout.wgsl')).toEqual(['lib/gate.wgsl', 'lib/rng.wgsl']);
    const order = expectComposed(KERNEL_FILES.stageDropout, SHADERS.stageDropout);
    expect(order.indexOf('lib/gate.wgsl')).toBeLessThan(order.indexOf('lib/dropout.wgsl'));
    expect(order.indexOf('lib/rng.wgsl')).toBeLessThan(order.indexOf('lib/dropout.wgsl'));
  });

  // Each kernel that includes lib/reduce.wgsl declares its own REDUCE_SIZE: the values the
  // composition table used to prepend (64 for the per-iteration solver reductions and the stages).
  it('REDUCE_SIZE of every kernel with a workgroup reduction', () => {
    // 'override': the kernel's entries have different workgroup sizes, each pipeline sets it.
    const expected: Partial<Record<ShaderName, number | 'override'>> = {
      residual: 64, finish: 64, andersonGram: 64, broydenFinalize: 64, broydenMeasure: 64, broydenDecide: 64,
      broydenAdvance: 64, broydenPrefixNormHead: 64, picardNormStep: 64, picardConvStep: 64, andersonNormMeasure: 64, andersonConvMeasure: 64, broydenNormStep: 64, broydenConvStep: 64, stageConv2d: 64, stageNorm: 64, picardStep: 64, spectralNorm: 64, andersonStep: 64, andersonMeasure: 64,
      rowsMeasure: 64, rowsBroyden: 64,
      picardFused: 256, lineSearch: 256, mse: 256, gdeqPrecondition: 256, softmaxXent: 256, powerStep: 256, jacobianPenalty: 256,
      picardDenseStep: 'override', picardPrefixStep: 'override', andersonDenseStep: 'override', andersonPrefixStep: 'override', broydenDenseStep: 'override', broydenPrefixStep: 'override', broydenPrefixHead: 'override',
      picardSplitStep: 'override', andersonSplitStep: 'override', andersonSplitMeasure: 64, broydenSplitStep: 'override', broydenSplitMeasure: 64,
    };
    const reducing = names.filter((n) => resolveIncludes(KERNEL_FILES[n], readShader).includes('lib/reduce.wgsl'));
    expect(reducing.sort()).toEqual(Object.keys(expected).sort());
    for (const name of reducing) {
      if (expected[name] === 'override') {
        expect(KERNELS[name].constants['REDUCE_SIZE'], name).toBeUndefined();
        expect(SHADERS[name], name).toMatch(/^override REDUCE_SIZE: u32/m);
      } else {
        expect(KERNELS[name].constants['REDUCE_SIZE'], name).toEqual({ type: 'u32', value: expected[name] });
      }
      expect(directives(KERNEL_FILES[name]), name).toContain('lib/reduce.wgsl');
    }
  });

  // The subgroup variants (SUBGROUP_PIECES): exactly the kernels with a workgroup reduction have
  // one; it is `enable subgroups;` then the kernel's files with lib/reduce.wgsl replaced, and it
  // binds exactly as the kernel (the same reflection serves both).
  it.each(names)('%s: its subgroup variant, where it has one', (name) => {
    const order = resolveIncludes(KERNEL_FILES[name], readShader);
    const variant = subgroupSource(SHADERS[name]);
    if (!order.includes('lib/reduce.wgsl')) {
      expect(variant).toBeUndefined();
      return;
    }
    if (variant === undefined) throw new Error(`${name}: no subgroup variant`);
    const files = order.map((path) => (path === 'lib/reduce.wgsl' ? 'lib/reduce_subgroups.wgsl' : path));
    expect(variant === ['enable subgroups;', ...files.map(fileText)].join('\n'), `${name}: variant text`).toBe(true);
    const runtime = new WgslReflect(variant).entry.compute;
    expect(runtime.map((e) => e.name).sort()).toEqual(Object.keys(KERNELS[name].entries).sort());
    for (const entry of runtime) {
      expect(builtReflection(variant, entry.name)).toBe(builtReflection(SHADERS[name], entry.name));
      expect(entry.resources.map((r) => [r.name, r.binding])).toEqual(builtReflection(SHADERS[name], entry.name)?.bindings.map((b) => [b.name, b.binding]));
    }
  });

  it.each(names)('%s: every entry point, binding and uniform member', (name) => {
    const source = SHADERS[name];
    const runtime = new WgslReflect(source).entry.compute;
    expect(runtime.length).toBeGreaterThan(0);
    expect(Object.keys(KERNELS[name].entries).sort()).toEqual(runtime.map((e) => e.name).sort());
    for (const entry of runtime) {
      const built = builtReflection(source, entry.name);
      if (!built) throw new Error(`${name}.${entry.name}: no build-time reflection`);
      expect([...built.workgroupSize], `${name}.${entry.name} workgroup size`).toEqual(entry.workgroupSize ?? [1, 1, 1]);
      expect(built.bindings.map((b) => b.name)).toEqual(entry.resources.map((r) => r.name));
      expect(built.bindings.length).toBeGreaterThan(0);
      for (const resource of entry.resources) {
        const b = built.bindings.find((x) => x.name === resource.name);
        const where = `${name}.${entry.name} binding ${resource.name}`;
        expect([b?.group, b?.binding], where).toEqual([resource.group, resource.binding]);
        if (resource.resourceType === ResourceType.Uniform) {
          expect(b?.kind, where).toBe('uniform');
          expect(b?.layout?.size, where).toBe(resource.size);
          const members = (resource.members ?? []).map((m) => [m.name, m.offset, m.type.name]);
          expect(b?.layout?.members.map((m) => [m.name, m.offset, m.type]), where).toEqual(members);
        } else if (resource.resourceType === ResourceType.Storage) {
          expect(b?.kind, where).toBe(resource.access === 'read' ? 'read-only-storage' : 'storage');
          expect(b?.layout, where).toBeUndefined();
        } else {
          expect(b?.kind, where).toBe('other');
        }
      }
    }
    expect(builtReflection(source, 'no_such_entry')).toBeUndefined();
    expect(builtReflection(source, 'toString')).toBeUndefined();
  });

  it('the Control struct, and the other composed sources', () => {
    const control = new WgslReflect(CONTROL_WGSL).structs.find((s) => s.name === 'Control');
    if (!control) throw new Error('control.wgsl has no struct Control');
    expect(CONTROL_LAYOUT?.size).toBe(control.size);
    expect(CONTROL_LAYOUT?.members.map((m) => [m.name, m.offset, m.type])).toEqual(control.members.map((m) => [m.name, m.offset, m.type.name]));
    // The header first, then the trace (src/solvers/control.ts); the gate words at the header's front.
    const header = new WgslReflect(CONTROL_WGSL).structs.find((s) => s.name === 'ControlHeader');
    expect(CONTROL_LAYOUT?.members.map((m) => [m.name, m.type])).toEqual([['h', 'ControlHeader'], ['trace', 'array']]);
    expect(CONTROL_LAYOUT?.members[1].offset).toBe(Math.ceil((header?.size ?? NaN) / 8) * 8);
    expect(CONTROL_HEADER_LAYOUT?.members.map((m) => [m.name, m.offset])).toEqual(header?.members.map((m) => [m.name, m.offset]));
    expect(CONTROL_HEADER_LAYOUT?.members.slice(0, 4).map((m) => [m.name, m.offset])).toEqual([
      ['skip_eval', 0], ['eval_index', 4], ['noise_key', 8], ['noise_on', 12],
    ]);
    for (const name of sourceNames) {
      expectComposed(SOURCE_FILES[name], SOURCES[name].source);
      expect(Object.keys(SOURCES[name].structs).sort()).toEqual(new WgslReflect(SOURCES[name].source).structs.map((s) => s.name).sort());
    }
    // defineLayer appends the library's entry point after the user's WGSL: it includes nothing.
    expect(resolveIncludes(SOURCE_FILES.customLayerMain, readShader)).toEqual([SOURCE_FILES.customLayerMain]);
    expect(CUSTOM_LAYER_WGSL.head).toBe(SOURCES.customLayerHead.source);
    expect(CUSTOM_LAYER_WGSL.main).toContain('ANCHORAX_VALUE(e)');
  });

  it('WGSL that is not a library kernel has no build-time reflection', () => {
    expect(builtReflection(`${SHADERS.sgd}\n`, 'main')).toBeUndefined();
  });
});

describe('on the device: build-time and run-time reflection bind the same kernel', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createTestEngine();
  });
  afterAll(() => engine?.destroy());

  // A trailing comment makes the source unknown to the build, so it is reflected when compiled.
  it.each([
    ['sgd', 'momentum'],
    ['residual', 'main'],
    ['stageNorm', 'stats_main'],
  ] as const)('%s.%s', async (name, entry) => {
    const built = await engine.kernel(`built.${name}.${entry}`, SHADERS[name], entry);
    const runtime = await engine.kernel(`runtime.${name}.${entry}`, `${SHADERS[name]}\n// reflected at run time`, entry);
    expect(built.bindingNames).toEqual(runtime.bindingNames);
    expect(built.bindingNames.length).toBeGreaterThan(1);
    expect(built.workgroupSize).toEqual(runtime.workgroupSize);
    expect(built.params?.size).toBe(runtime.params?.size);
    expect(built.params?.size).toBeGreaterThanOrEqual(16);
  });
});

describe('the library reflects none of its own kernels at run time', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createTestEngine();
  });
  afterAll(() => engine?.destroy());

  const random = rng(3);
  const values = (n: number, scale: number): Float32Array => Float32Array.from(randomArray(random, n, scale));

  // Every solver, backprop mode, optimizer, loss and stage kind, on small problems: each compiles
  // its kernels from SHADERS; a call site that spliced a source at run time would count here.
  it('solvers, backprop, optimizers, losses and every stage; only defineLayer then reflects', async () => {
    const before = runtimeReflectionCount();
    const d = 8;
    const batch = 2;
    const w = engine.tensor(values(d * d, 0.5 / Math.sqrt(d)), [d, d]);
    const b = engine.tensor(values(d, 0.1), [d]);
    const block = implicitBlock(engine, { weight: w, bias: b });
    const qd = engine.tensor(values(batch * d, 1), [batch, d]);
    for (const [solve, options] of [[picard, {}], [anderson, {}], [broyden, { ls: true }]] as const) {
      const r = await solve(block, qd, { eps: 1e-4, ...options });
      expect(r.stats.nonFinite).toBe(false);
      r.dispose();
    }
    const target = engine.tensor(values(batch * d, 0.5), [batch, d]);
    const adamOpt = adam(engine, [w, b], { lr: 1e-2 });
    const sgdOpt = sgd(engine, [w, b], { lr: 1e-2, momentum: 0.5 });
    for (const [mode, optimizer] of [[gdeq, adamOpt], [ift, sgdOpt]] as const) {
      const out = await mode(block, qd, { solver: broyden, eps: 1e-4 });
      const loss = await mse(out.uStar, target);
      const grads = await out.backward(loss.grad);
      await optimizer.step([grads.weight, grads.bias]);
      for (const t of [loss.grad, loss.total, grads.weight, grads.bias, grads.Qd]) t.dispose();
      out.dispose();
    }
    const h = 2;
    const c = 2;
    const cell = sequential(
      conv2d(engine, { height: h, width: 2, weight: values(9 * c * c, 0.3), bias: values(c, 0.1), inChannels: c, outChannels: c }),
      groupNorm(engine, { groups: 1, gamma: values(c, 1), beta: values(c, 0.1) }),
      relu(),
      dropout(0.1),
      linear(engine, { weight: values(d * d, 0.3), bias: values(d, 0.1) }),
      tanh(),
      add(Qd),
      layerNorm(engine, { gamma: values(d, 1), beta: values(d, 0.1) }),
    );
    const out = await jfb(cell, qd, { solver: anderson, eps: 1e-4 });
    const xent = await softmaxCrossEntropy(out.uStar, [1, 3]);
    const grads = await out.backward(xent.grad);
    expect(Object.keys(grads).length).toBeGreaterThan(5);
    out.dispose();
    expect(runtimeReflectionCount() - before).toBe(0);

    // defineLayer's WGSL is reflected when compiled: the count moves (one per kernel).
    await defineLayer(engine, {
      featureSize: d,
      forward: 'fn forward(row: u32, i: u32) -> f32 { return tanh(0.5 * state(row, i) + injected(row, i)); }',
      adjoint: `
fn slope(row: u32, i: u32) -> f32 { let y = forward(row, i); return grad_output(row, i) * (1.0 - y * y); }
fn grad_input(row: u32, i: u32) -> f32 { return 0.5 * slope(row, i); }
fn grad_qd(row: u32, i: u32) -> f32 { return slope(row, i); }`,
    });
    expect(runtimeReflectionCount() - before).toBe(3);
  });
});
