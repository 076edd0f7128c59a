/**
 * The library's WGSL sources, composed at build time from the files in shaders/ (each with the
 * pieces its `//! include` lines declare; src/gpu/shader-files.ts names the sources), together
 * with their reflection (scripts/vite-wgsl-reflect.ts serves both as `virtual:anchorax-shaders`),
 * so that the main bundle carries no WGSL parser.
 */
import { KERNELS, SOURCES } from 'virtual:anchorax-shaders';
import type { ConstantReflections, ConstantType, EntryReflections, KernelReflection, StructLayout } from './reflection';
import type { ShaderName, SourceName } from './shader-files';

export type { ShaderName, SourceName } from './shader-files';

/** The Control struct's source (shaders/lib/control.wgsl). */
export const CONTROL_WGSL: string = SOURCES.control.source;

/** @internal The Control struct's layout (its header, then the trace), reflected at build time. */
export const CONTROL_LAYOUT: StructLayout | undefined = SOURCES.control.structs['Control'];

/** @internal The ControlHeader struct's layout (the header's fields), reflected at build time. */
export const CONTROL_HEADER_LAYOUT: StructLayout | undefined = SOURCES.control.structs['ControlHeader'];

/**
 * The library's side of a defineLayer kernel: `head` (gate, randomness, the accessors users call)
 * goes before the parameter declarations and the user's WGSL, `main` after, with its
 * `ANCHORAX_VALUE` replaced by the call of the user's function.
 */
export const CUSTOM_LAYER_WGSL: { readonly head: string; readonly main: string } = {
  head: SOURCES.customLayerHead.source,
  main: SOURCES.customLayerMain.source,
};

/** Each kernel's composed WGSL, by name. */
export const SHADERS = Object.fromEntries(Object.entries(KERNELS).map(([name, k]) => [name, k.source])) as {
  readonly [K in ShaderName]: string;
};

/** Each kernel's reflection by its composed WGSL (a subgroup variant shares its kernel's). */
const BUILT = new Map<string, EntryReflections>();
/** The subgroup variant of each kernel that has one, by the kernel's WGSL. */
const SUBGROUP_VARIANTS = new Map<string, string>();
for (const k of Object.values(KERNELS)) {
  BUILT.set(k.source, k.entries);
  if (k.subgroups) {
    BUILT.set(k.subgroups, k.entries);
    SUBGROUP_VARIANTS.set(k.source, k.subgroups);
  }
}

/**
 * @internal The subgroup variant of `source` when it is one of the library's kernels and includes
 * a piece that has one (src/gpu/shader-files.ts SUBGROUP_PIECES), else undefined. It opens with
 * `enable subgroups;`, so it compiles only on a device with the `subgroups` feature.
 */
export function subgroupSource(source: string): string | undefined {
  return SUBGROUP_VARIANTS.get(source);
}

/**
 * @internal The build-time reflection of `entryPoint` when `source` is one of the library's
 * kernels (exactly), else undefined (WGSL composed at run time is reflected then).
 */
export function builtReflection(source: string, entryPoint: string): KernelReflection | undefined {
  const entries = BUILT.get(source);
  return entries && Object.hasOwn(entries, entryPoint) ? entries[entryPoint] : undefined;
}

function constantsOf(of: ShaderName | SourceName): ConstantReflections {
  if (Object.hasOwn(KERNELS, of)) return KERNELS[of as ShaderName].constants;
  if (Object.hasOwn(SOURCES, of)) return SOURCES[of as SourceName].constants;
  throw new Error(`anchorax: no library WGSL source named ${of}`);
}

/**
 * @internal The value of the module-scope `const <name>: <type>` that the composed WGSL of kernel
 * or source `of` declares (its own file or a piece it includes), reflected at build time: how
 * TypeScript shares a constant with WGSL (finish modes, op codes) without a copy to keep in sync.
 * Throws when the source declares no such constant or gives it another type, so a renamed or
 * removed constant fails when the module that reads it loads.
 */
export function wgslConstant(of: ShaderName | SourceName, name: string, type: ConstantType): number {
  const constants = constantsOf(of);
  const constant = Object.hasOwn(constants, name) ? constants[name] : undefined;
  if (!constant) {
    throw new Error(
      `anchorax: the WGSL of ${of} declares no module-scope scalar const ${name} (only literals and expressions of earlier constants are reflected)`,
    );
  }
  if (constant.type !== type) throw new Error(`anchorax: const ${name} of ${of}'s WGSL is ${constant.type}, not ${type}`);
  return constant.value;
}
