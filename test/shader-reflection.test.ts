// The build-time reflection (scripts/vite-wgsl-reflect.ts → `virtual:anchorax-shaders`) against
// what wgsl_reflect reads at run time from the very sources the library compiles: every kernel,
// every @compute entry point, every binding and uniform member; the Control struct; and the
// composition of each source from shaders/ as src/gpu/shader-recipes.ts describes it. Then, on
// the device, a kernel bound from its build-time reflection against the same WGSL reflected when
// compiled.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KERNELS, SOURCES } from 'virtual:anchorax-shaders';
import { ResourceType, WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src';
import { builtReflection, CONTROL_LAYOUT, CONTROL_WGSL, CUSTOM_LAYER_WGSL, SHADERS, type ShaderName } from '../src/gpu/shaders';
import { KERNEL_RECIPES, SOURCE_RECIPES } from '../src/gpu/shader-recipes';
import { createTestEngine } from './helpers/engine';

const SHADER_DIR = fileURLToPath(new URL('../shaders/', import.meta.url));
const names = Object.keys(KERNEL_RECIPES) as ShaderName[];

describe('build-time reflection equals wgsl_reflect at run time', () => {
  it('covers every kernel of the recipes, and SHADERS serves exactly those', () => {
    expect(Object.keys(KERNELS).sort()).toEqual([...names].sort());
    expect(Object.keys(SHADERS).sort()).toEqual([...names].sort());
    expect(names.length).toBeGreaterThan(30);
  });

  it.each(names)('%s: composed from shaders/ as its recipe says', (name) => {
    const expected = KERNEL_RECIPES[name].map((p) => (p.endsWith('.wgsl') ? readFileSync(`${SHADER_DIR}${p}`, 'utf8') : p)).join('\n');
    expect(SHADERS[name] === expected).toBe(true);
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
    // The gate words at the front, and the trace after the header (src/solvers/control.ts).
    expect(CONTROL_LAYOUT?.members.slice(0, 4).map((m) => [m.name, m.offset])).toEqual([
      ['skip_eval', 0], ['eval_index', 4], ['noise_key', 8], ['noise_on', 12],
    ]);
    for (const name of Object.keys(SOURCE_RECIPES) as (keyof typeof SOURCE_RECIPES)[]) {
      const expected = SOURCE_RECIPES[name].map((p) => (p.endsWith('.wgsl') ? readFileSync(`${SHADER_DIR}${p}`, 'utf8') : p)).join('\n');
      expect(SOURCES[name].source === expected, name).toBe(true);
      expect(Object.keys(SOURCES[name].structs).sort()).toEqual(new WgslReflect(expected).structs.map((s) => s.name).sort());
    }
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
