/**
 * Reflection of WGSL with wgsl_reflect (a WGSL parser, most of the library's size were it in the
 * main bundle). Used at build time by scripts/vite-wgsl-reflect.ts for every library kernel, and at
 * run time only for WGSL the library does not know in advance (defineLayer's), through
 * `loadReflector()` in kernel.ts, which imports this module lazily.
 * @internal
 */
import { Const, LiteralExpr, ResourceType, WgslParser, WgslReflect, type VariableInfo } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { ConstantReflections, ConstantType, EntryReflections, KernelReflection, ReflectedBinding, ReflectedConstant, StructLayout } from './reflection';

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

const CONSTANT_TYPES: readonly string[] = ['u32', 'i32', 'f32'] satisfies readonly ConstantType[];

/**
 * @internal The module-scope `const` declarations of `source` whose value is a scalar u32, i32 or
 * f32, by name (an untyped integer literal is i32, as WGSL concretizes it). The parser folds
 * literals and expressions of constants declared before; a constant it cannot fold (one that names
 * a later constant), a vector, a bool and a function's local constants are not listed.
 */
export function reflectConstants(source: string): ConstantReflections {
  const constants: Record<string, ReflectedConstant> = {};
  for (const node of new WgslParser().parse(source)) {
    if (!(node instanceof Const) || !(node.value instanceof LiteralExpr) || !node.value.isScalar) continue;
    const type = node.type?.name ?? node.value.type.name;
    if (!CONSTANT_TYPES.includes(type)) continue;
    constants[node.name] = { type: type as ConstantType, value: node.value.scalarValue };
  }
  return constants;
}
