// Served by scripts/vite-wgsl-reflect.ts (every vite/vitest config of the project uses it).
declare module 'virtual:anchorax-shaders' {
  import type { ConstantReflections, EntryReflections, StructLayout } from './gpu/reflection';
  import type { ShaderName, SourceName } from './gpu/shader-files';
  /**
   * Each kernel's composed WGSL, the reflection of its @compute entry points and its constants, and
   * for kernels that include a piece of SUBGROUP_PIECES the WGSL of their subgroup variant (same
   * entry points and bindings).
   */
  export const KERNELS: {
    readonly [K in ShaderName]: {
      readonly source: string;
      readonly entries: EntryReflections;
      readonly constants: ConstantReflections;
      readonly subgroups?: string;
    };
  };
  /** Each other source's composed WGSL, the layouts of its structs and its constants. */
  export const SOURCES: {
    readonly [K in SourceName]: {
      readonly source: string;
      readonly structs: Readonly<Record<string, StructLayout>>;
      readonly constants: ConstantReflections;
    };
  };
}
