// Served by scripts/vite-wgsl-reflect.ts (every vite/vitest config of the project uses it).
declare module 'virtual:anchorax-shaders' {
  import type { EntryReflections, StructLayout } from './gpu/reflection';
  import type { ShaderName, SourceName } from './gpu/shader-recipes';
  /** Each kernel's composed WGSL and the reflection of its @compute entry points. */
  export const KERNELS: { readonly [K in ShaderName]: { readonly source: string; readonly entries: EntryReflections } };
  /** Each other source's composed WGSL and the layouts of its structs. */
  export const SOURCES: {
    readonly [K in SourceName]: { readonly source: string; readonly structs: Readonly<Record<string, StructLayout>> };
  };
}
