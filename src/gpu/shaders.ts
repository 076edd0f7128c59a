/**
 * The library's WGSL sources, composed at build time from the pieces in shaders/ following
 * src/gpu/shader-recipes.ts, together with their reflection (scripts/vite-wgsl-reflect.ts serves
 * both as `virtual:anchorax-shaders`), so that the main bundle carries no WGSL parser.
 */
import { KERNELS, SOURCES } from 'virtual:anchorax-shaders';
import type { KernelReflection, StructLayout } from './reflection';
import type { ShaderName } from './shader-recipes';

export type { ShaderName } from './shader-recipes';

/** The Control struct's source (shaders/lib/control.wgsl). */
export const CONTROL_WGSL: string = SOURCES.control.source;

/** @internal The Control struct's layout, reflected at build time. */
export const CONTROL_LAYOUT: StructLayout | undefined = SOURCES.control.structs['Control'];

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

const BUILT = new Map(Object.values(KERNELS).map((k) => [k.source, k.entries]));

/**
 * @internal The build-time reflection of `entryPoint` when `source` is one of the library's
 * kernels (exactly), else undefined (WGSL composed at run time is reflected then).
 */
export function builtReflection(source: string, entryPoint: string): KernelReflection | undefined {
  const entries = BUILT.get(source);
  return entries && Object.hasOwn(entries, entryPoint) ? entries[entryPoint] : undefined;
}

/** MERGE-PLACEHOLDER (replaced by h1's build-time reflection of WGSL constants). */
export const SHADER_CONSTANTS = {
  activations: { OP_TANH: 0, OP_RELU: 1, OP_GELU: 2 },
  epilogue: { OP_ADD_QD: 3, OP_DROPOUT: 4, OP_NONE: 255, EPI_MAX: 4 },
} as const;
