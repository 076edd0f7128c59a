/**
 * Reflection of WGSL with wgsl_reflect (a WGSL parser, most of the library's size were it in the
 * main bundle). Used at build time by scripts/vite-wgsl-reflect.ts for every library kernel, and at
 * run time only for WGSL the library does not know in advance (defineLayer's), through
 * `loadReflector()` in kernel.ts, which imports this module lazily.
 * @internal
 */
import { ResourceType, WgslReflect, type VariableInfo } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { EntryReflections, KernelReflection, ReflectedBinding, StructLayout } from './reflection';

function layoutOf(size: number, members: readonly { name: string; offset: number; type: { name: string } }[] | null): StructLayout {
  return { size, members: (members ?? []).map((m) => ({ name: m.name, offset: m.offset, type: m.type.name })) };
}

function bindingOf(resource: VariableInfo): ReflectedBinding {
  const { name, group, binding } = resource;
  if (resource.resourceType === ResourceType.Uniform) {
    return { name, group, binding, kind: 'uniform', layout: layoutOf(resource.size, resource.members) };
  }
  if (resource.resourceType === ResourceType.Storage) {
    return { name, group, binding, kind: resource.access === 'read' ? 'read-only-storage' : 'storage' };
  }
  return { name, group, binding, kind: 'other' };
}

/** @internal Bindings and workgroup size of every @compute entry point of `source`. */
export function reflectEntries(source: string): EntryReflections {
  const entries: Record<string, KernelReflection> = {};
  for (const entry of new WgslReflect(source).entry.compute) {
    const size = entry.workgroupSize ?? [1, 1, 1];
    entries[entry.name] = {
      workgroupSize: [size[0] ?? 1, size[1] ?? 1, size[2] ?? 1],
      bindings: entry.resources.map(bindingOf),
    };
  }
  return entries;
}

/** @internal Layouts of the structs `source` declares, by name. */
export function reflectStructs(source: string): Readonly<Record<string, StructLayout>> {
  return Object.fromEntries(new WgslReflect(source).structs.map((s) => [s.name, layoutOf(s.size, s.members)]));
}
