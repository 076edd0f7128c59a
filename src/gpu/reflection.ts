/**
 * What a kernel's WGSL declares, as plain data: its bindings, the layout of its uniform struct,
 * its workgroup size and its module-scope scalar constants. The library's kernels get it at build
 * time (scripts/vite-wgsl-reflect.ts, from shaders/ as src/gpu/shader-files.ts names them); WGSL known only at run time (defineLayer's)
 * gets it from src/gpu/reflect.ts, loaded on first use. Both produce it with the same code
 * (reflect.ts), so the two can only differ if the sources differ.
 * @internal
 */

/** One member of a struct: byte offset and scalar type name (`f32`, `u32`, `vec2<f32>`…). @internal */
export interface StructMember {
  readonly name: string;
  readonly offset: number;
  readonly type: string;
}

/** A struct's size in bytes and its members in declaration order. @internal */
export interface StructLayout {
  readonly size: number;
  readonly members: readonly StructMember[];
}

/** One resource an entry point uses. `other`: a texture or sampler (the library binds only buffers). @internal */
export interface ReflectedBinding {
  readonly name: string;
  readonly group: number;
  readonly binding: number;
  readonly kind: 'uniform' | 'storage' | 'read-only-storage' | 'other';
  /** For a uniform: its layout (no members when it is not a struct). */
  readonly layout?: StructLayout;
}

/** One @compute entry point. @internal */
export interface KernelReflection {
  readonly workgroupSize: readonly [number, number, number];
  /** In the order wgsl_reflect lists them. */
  readonly bindings: readonly ReflectedBinding[];
}

/** Every @compute entry point of one source, by name. @internal */
export type EntryReflections = Readonly<Record<string, KernelReflection>>;

/** The scalar types a reflected constant can have. @internal */
export type ConstantType = 'u32' | 'i32' | 'f32';

/** A module-scope `const` of scalar type, with its value (an f32 is the float32 value). @internal */
export interface ReflectedConstant {
  readonly type: ConstantType;
  readonly value: number;
}

/** The module-scope scalar constants of one source, by name. @internal */
export type ConstantReflections = Readonly<Record<string, ReflectedConstant>>;
