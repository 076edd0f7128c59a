/**
 * A compute kernel: one WGSL entry point, its pipeline, and a bind-group layout derived from the
 * shader itself (never written by hand): the library's kernels were reflected at build time
 * (src/gpu/shaders.ts), other WGSL is reflected when compiled, by wgsl_reflect loaded on first use
 * (`loadReflector`). Kernels encode into a pass the caller owns (`kernel.dispatch(pass, group,
 * ...)`), so solvers compose many of them into one command buffer.
 */
import { ShaderStage } from './flags';
import { AnchoraxError, LimitError, OptionError } from '../errors';
import type { EntryReflections, KernelReflection, StructLayout } from './reflection';
import { builtReflection } from './shaders';

/** A buffer, or a region of one (offset/size in bytes; offset a multiple of 256). */
export type BufferRegion = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** WGSL compile error with the compiler's messages and line numbers. */
export class ShaderCompileError extends AnchoraxError { override name = 'ShaderCompileError'; }

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
/** @internal A number naming `buffer` for cache keys (never reused for another buffer). */
export function bufferId(buffer: GPUBuffer): number {
  let id = bufferIds.get(buffer);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(buffer, id);
  }
  return id;
}

function isBuffer(region: BufferRegion): region is GPUBuffer {
  return (region as GPUBuffer).mapState !== undefined && typeof (region as GPUBuffer).destroy === 'function';
}

/** @internal What kernels need of the runtime reflector (typed here: dist/types must not reach wgsl_reflect's types). */
export interface Reflector {
  reflectEntries(source: string): EntryReflections;
}

let reflector: Promise<Reflector> | undefined;

/**
 * @internal The runtime reflector (src/gpu/reflect.ts, with wgsl_reflect), imported on first use:
 * only WGSL composed at run time (defineLayer's, tests') needs it, so bundles load it on demand.
 */
export function loadReflector(): Promise<Reflector> {
  reflector ??= import('./reflect');
  return reflector;
}

/** Packs named scalar values into a uniform struct following the shader's reflected layout. */
export class UniformLayout {
  readonly size: number;
  private readonly members: Map<string, { offset: number; type: string }>;
  /** @internal */
  constructor(layout: StructLayout) {
    this.size = Math.max(16, Math.ceil(layout.size / 16) * 16);
    this.members = new Map(layout.members.map((m) => [m.name, { offset: m.offset, type: m.type }]));
  }
  /** Encodes `values`; every member of the struct must be given (a missing one is a bug). */
  pack(values: Record<string, number>): ArrayBuffer {
    const bytes = new ArrayBuffer(this.size);
    const view = new DataView(bytes);
    for (const [name, { offset, type }] of this.members) {
      const value = values[name];
      if (value === undefined) throw new Error(`uniform member "${name}" not given`);
      if (type === 'f32') view.setFloat32(offset, value, true);
      else if (type === 'i32') view.setInt32(offset, value, true);
      else if (type === 'u32') view.setUint32(offset, value, true);
      else throw new Error(`uniform member "${name}" has unsupported type ${type}`);
    }
    return bytes;
  }
}

/** How {@link Kernel.compile} compiles a source. */
export interface CompileOptions {
  /** Names a line of the composed source for error messages (e.g. "forward WGSL line 3"). */
  locate?: (line: number) => string;
  /** WGSL reflected instead of the source (same entry point and bindings). */
  layoutSource?: string;
  /** Values of the shader's `override` constants, by name. */
  constants?: Readonly<Record<string, number>>;
  /** @internal Where the kernel counts its dispatches (the engine's counters). */
  tally?: KernelTally;
}

/** @internal What a kernel counts (the engine's counters). */
export interface KernelTally {
  dispatches: number;
  bindGroupsCreated: number;
}

interface BindingSlot {
  name: string;
  binding: number;
  type: GPUBufferBindingType;
}

/**
 * Bind groups a kernel keeps cached: past this many, the least recently looked up is dropped (a
 * group found among the last few bindings, see RECENT_GROUPS, is not looked up).
 */
export const MAX_CACHED_GROUPS = 512;
/** Bindings a kernel recognises without building a key: the last few. */
const RECENT_GROUPS = 8;

/** Compiles `source`; WGSL that does not compile is a ShaderCompileError with the compiler's messages. */
async function compileModule(
  device: GPUDevice,
  label: string,
  source: string,
  locate: (line: number) => string,
): Promise<GPUShaderModule> {
  // In a scope: WGSL that does not compile is reported below as a ShaderCompileError, not as
  // an uncaptured error on the application's device.
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label, code: source });
  const info = await module.getCompilationInfo();
  await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    const lines = source.split('\n');
    const text = errors
      .map((m) => `${locate(m.lineNum)}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1] ?? ''}`)
      .join('\n');
    throw new ShaderCompileError(label, `WGSL does not compile:\n${text}`);
  }
  return module;
}

let runtimeReflections = 0;

/**
 * @internal How many sources this process reflected at run time. The library's own kernels never
 * add to it (their reflection is built in); a test holds it to that.
 */
export function runtimeReflectionCount(): number {
  return runtimeReflections;
}

/** Reflection of WGSL the build did not see (defineLayer's, tests'), by the lazily loaded reflector. */
async function reflectAtRuntime(label: string, source: string, entryPoint: string): Promise<KernelReflection | undefined> {
  runtimeReflections++;
  const reflector = await loadReflector();
  let entries: EntryReflections;
  try {
    entries = reflector.reflectEntries(source);
  } catch (err) {
    throw new ShaderCompileError(label, `compiles, but its bindings cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  return Object.hasOwn(entries, entryPoint) ? entries[entryPoint] : undefined;
}

export class Kernel {
  readonly label: string;
  readonly workgroupSize: [number, number, number];
  /** Layout of the `params` uniform, when the shader declares one. */
  readonly params?: UniformLayout;
  /** @internal The compiled pipeline (bench/encode-cost.ts replays dispatches with it). */
  readonly pipeline: GPUComputePipeline;
  private readonly layout: GPUBindGroupLayout;
  private readonly slots: BindingSlot[];
  /** Cached bind groups by buffer identity, with the ids of the buffers each one binds. */
  private readonly groups = new Map<string, { group: GPUBindGroup; ids: number[] }>();
  /** The last few groups bound (see recentGroup). */
  private readonly recent: { parts: (GPUBuffer | number)[]; group: GPUBindGroup; ids: number[] }[] = [];
  /** Groups this kernel made whose buffers are all alive (see isLive). */
  private readonly live = new WeakSet<GPUBindGroup>();

  private constructor(
    private readonly device: GPUDevice,
    label: string,
    pipeline: GPUComputePipeline,
    layout: GPUBindGroupLayout,
    slots: BindingSlot[],
    workgroupSize: [number, number, number],
    private readonly tally: KernelTally,
    params?: UniformLayout,
  ) {
    this.label = label;
    this.pipeline = pipeline;
    this.layout = layout;
    this.slots = slots;
    this.workgroupSize = workgroupSize;
    this.params = params;
  }

  /**
   * Compiles `source` (already composed from shared pieces) and binds it as reflected: at build
   * time for the library's kernels, else now (the runtime reflector, loaded on first use). The
   * uniform buffer, when the entry point uses one, is the `params` layout whatever its name.
   * `locate` names a line of the composed source for error messages (e.g. "forward WGSL line 3").
   * `layoutSource`, when given, is reflected instead of `source`: WGSL with the same entry point
   * and bindings (defineLayer's stand-in for WGSL the library did not write). `constants` set the
   * shader's `override` declarations (tile sizes, fused epilogue ops) at pipeline creation.
   */
  static async compile(device: GPUDevice, label: string, source: string, entryPoint = 'main', options: CompileOptions = {}): Promise<Kernel> {
    const locate = options.locate ?? ((line: number) => `line ${line}`);
    const module = await compileModule(device, label, source, locate);
    const reflection = builtReflection(source, entryPoint) ?? (await reflectAtRuntime(label, options.layoutSource ?? source, entryPoint));
    if (!reflection) throw new ShaderCompileError(label, `no @compute entry point named "${entryPoint}"`);
    return Kernel.fromReflection(device, label, module, entryPoint, reflection, options.constants, options.tally);
  }

  /** A kernel of a compiled `module` with the given reflection of its entry point `entryPoint`. */
  private static async fromReflection(
    device: GPUDevice,
    label: string,
    module: GPUShaderModule,
    entryPoint: string,
    reflection: KernelReflection,
    constants?: Readonly<Record<string, number>>,
    tally: KernelTally = { dispatches: 0, bindGroupsCreated: 0 },
  ): Promise<Kernel> {
    const slots: BindingSlot[] = [];
    let params: UniformLayout | undefined;
    for (const resource of reflection.bindings) {
      if (resource.group !== 0) throw new ShaderCompileError(label, `binding ${resource.name} must be in @group(0)`);
      if (resource.kind === 'uniform') {
        slots.push({ name: resource.name, binding: resource.binding, type: 'uniform' });
        if (params) throw new ShaderCompileError(label, `uses two uniform buffers (${resource.name}); one is supported`);
        params = new UniformLayout(resource.layout ?? { size: 0, members: [] });
      } else if (resource.kind === 'other') {
        throw new ShaderCompileError(label, `binding ${resource.name}: only buffers are supported`);
      } else {
        slots.push({ name: resource.name, binding: resource.binding, type: resource.kind });
      }
    }
    slots.sort((a, b) => a.binding - b.binding);
    const storageCount = slots.filter((s) => s.type !== 'uniform').length;
    if (storageCount > device.limits.maxStorageBuffersPerShaderStage) {
      throw new LimitError(
        label,
        `binds ${storageCount} storage buffers; this device allows maxStorageBuffersPerShaderStage = ${device.limits.maxStorageBuffersPerShaderStage}`,
      );
    }
    // Validation errors would otherwise only surface later as silently skipped submits.
    device.pushErrorScope('validation');
    const layout = device.createBindGroupLayout({
      label,
      entries: slots.map((s) => ({ binding: s.binding, visibility: ShaderStage.COMPUTE, buffer: { type: s.type } })),
    });
    const pipeline = device.createComputePipeline({
      label,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: constants ? { module, entryPoint, constants: { ...constants } } : { module, entryPoint },
    });
    const invalid = await device.popErrorScope();
    if (invalid) throw new ShaderCompileError(label, `pipeline rejected by the device: ${invalid.message}`);
    return new Kernel(device, label, pipeline, layout, slots, [...reflection.workgroupSize], tally, params);
  }

  /** Names of the bindings the shader uses, in binding order. */
  get bindingNames(): string[] {
    return this.slots.map((s) => s.name);
  }

  /**
   * A bind group for these resources (by binding name), cached by buffer identity: solvers ask
   * for the same groups every iteration and get them without allocation.
   */
  bind(resources: Record<string, BufferRegion>): GPUBindGroup {
    const recent = this.recentGroup(resources);
    if (recent) return recent;
    let key = '';
    const ids: number[] = [];
    for (const slot of this.slots) {
      const region = resources[slot.name];
      if (!region) throw new OptionError(this.label, `binding "${slot.name}" was not given`);
      const b = isBuffer(region) ? { buffer: region, offset: 0, size: undefined } : region;
      const id = bufferId(b.buffer);
      ids.push(id);
      key += `${id}:${b.offset ?? 0}:${b.size ?? -1};`;
    }
    const cached = this.groups.get(key);
    if (cached) {
      // Least recently used first: a group asked for again moves to the end.
      this.groups.delete(key);
      this.groups.set(key, cached);
      this.remember(resources, cached.group, cached.ids);
      return cached.group;
    }
    this.tally.bindGroupsCreated++;
    const group = this.device.createBindGroup({
      label: this.label,
      layout: this.layout,
      entries: this.slots.map((slot) => {
        const region = resources[slot.name] as BufferRegion;
        return { binding: slot.binding, resource: isBuffer(region) ? { buffer: region } : (region as GPUBufferBinding) };
      }),
    });
    if (this.groups.size >= MAX_CACHED_GROUPS) {
      const oldest = this.groups.keys().next().value;
      if (oldest !== undefined) {
        // No longer tracked, so no longer known to be alive when its buffers go.
        this.live.delete((this.groups.get(oldest) as { group: GPUBindGroup }).group);
        this.groups.delete(oldest);
      }
    }
    this.groups.set(key, { group, ids });
    this.live.add(group);
    this.remember(resources, group, ids);
    return group;
  }

  /** (buffer, offset, size) of every slot's region in `resources`, or null when one is missing. */
  private partsOf(resources: Record<string, BufferRegion>): (GPUBuffer | number)[] | null {
    const parts: (GPUBuffer | number)[] = [];
    for (const slot of this.slots) {
      const region = resources[slot.name];
      if (!region) return null;
      const inner = (region as { buffer?: GPUBuffer }).buffer;
      if (inner === undefined) parts.push(region as GPUBuffer, 0, -1);
      else parts.push(inner, (region as GPUBufferBinding).offset ?? 0, (region as GPUBufferBinding).size ?? -1);
    }
    return parts;
  }

  /**
   * The group of one of the last few bindings when `resources` names the same regions: solvers
   * bind the same few sets every iteration, and comparing them beats building the cache key.
   */
  private recentGroup(resources: Record<string, BufferRegion>): GPUBindGroup | undefined {
    const recent = this.recent;
    if (recent.length === 0) return undefined;
    const slots = this.slots;
    next: for (const entry of recent) {
      const parts = entry.parts;
      for (let s = 0; s < slots.length; s++) {
        const region = resources[slots[s].name];
        if (!region) return undefined;
        const inner = (region as { buffer?: GPUBuffer }).buffer;
        if (inner === undefined) {
          if (parts[3 * s] !== region || parts[3 * s + 1] !== 0 || parts[3 * s + 2] !== -1) continue next;
        } else if (parts[3 * s] !== inner || parts[3 * s + 1] !== ((region as GPUBufferBinding).offset ?? 0) || parts[3 * s + 2] !== ((region as GPUBufferBinding).size ?? -1)) {
          continue next;
        }
      }
      return entry.group;
    }
    return undefined;
  }

  private remember(resources: Record<string, BufferRegion>, group: GPUBindGroup, ids: number[]): void {
    const parts = this.partsOf(resources);
    if (!parts) return;
    if (this.recent.length >= RECENT_GROUPS) this.recent.shift();
    this.recent.push({ parts, group, ids });
  }

  /**
   * @internal Whether `group`, made by this kernel's `bind`, may still be encoded: true until one of
   * its buffers is destroyed (or the group leaves the cache). Callers that keep groups of their own
   * across calls (DenseKernels' recent forwards) check it before reusing one.
   */
  isLive(group: GPUBindGroup): boolean {
    return this.live.has(group);
  }

  /** @internal Number of cached bind groups. */
  get cachedGroups(): number {
    return this.groups.size;
  }

  /** @internal Drops the cached bind groups that bind any buffer of `ids` (buffers being destroyed). */
  forget(ids: ReadonlySet<number>): void {
    for (const [key, entry] of this.groups) {
      if (entry.ids.some((id) => ids.has(id))) {
        this.groups.delete(key);
        this.live.delete(entry.group);
      }
    }
    const kept = this.recent.filter((entry) => !entry.ids.some((id) => ids.has(id)));
    this.recent.length = 0;
    this.recent.push(...kept);
  }

  /** @internal Encodes one dispatch whose workgroup counts the GPU reads from `args` (3 × u32 at `offset`). */
  dispatchIndirect(pass: GPUComputePassEncoder, group: GPUBindGroup, args: GPUBuffer, offset = 0): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroupsIndirect(args, offset);
    this.tally.dispatches++;
  }

  /** Encodes one dispatch into a pass the caller owns. */
  dispatch(pass: GPUComputePassEncoder, group: GPUBindGroup, x: number, y = 1, z = 1): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    this.tally.dispatches++;
  }
}
