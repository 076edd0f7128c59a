/**
 * Kernels as data, and the one base every layer, stage and solver piece builds on: a
 * {@link KernelSpec} says which composed shader and entry point a kernel is, the values of its
 * `override` constants and its dispatch geometry as a function of the problem; a {@link KernelSet}
 * compiles its specs once (the engine caches pipelines), prepares per-batch scratch once per
 * batch size, refuses to encode before `prepare`, and encodes a kernel from its spec, bindings and
 * uniform values into a pass the caller owns.
 */
import { DisposedError } from '../errors';
import type { BufferRegion, CompileOptions, Kernel } from './kernel';
import { SHADERS, type ShaderName } from './shaders';

/** Workgroup counts (x, y, z) of a dispatch. */
export type Groups = readonly [number, number?, number?];

/** @internal One kernel, described: shader, entry point, override constants, dispatch geometry. */
export interface KernelSpec<Problem> {
  readonly shader: ShaderName;
  /** Entry point (default `main`). */
  readonly entry?: string;
  /** Values of the shader's `override` constants (booleans as 0/1). */
  readonly constants?: Readonly<Record<string, number>>;
  /** Workgroups to dispatch for `problem`. */
  readonly groups: (problem: Problem) => Groups;
}

/** @internal What a kernel set needs of the engine (kept small: gpu/ does not import the engine). */
export interface KernelHost {
  readonly device: GPUDevice;
  kernel(name: string, source: string, entryPoint?: string, options?: CompileOptions): Promise<Kernel>;
  params(kernel: Kernel, values: Record<string, number>): GPUBuffer;
  assertAlive(what: string): void;
}

/** @internal Per-batch scratch of a kernel set: allocated once per batch size, freed by dispose. */
export interface ScratchPolicy<Scratch> {
  allocate(batch: number): Scratch;
  free(scratch: Scratch): void;
}

/** @internal One dispatch as KernelSet.dispatch would encode it. */
export interface KernelCall {
  readonly kernel: Kernel;
  readonly group: GPUBindGroup;
  readonly x: number;
  readonly y: number;
  readonly z: number;
  /** Its `params` uniform buffer, when it has one. */
  readonly uniform?: GPUBuffer;
}

const NO_SCRATCH: ScratchPolicy<null> = { allocate: () => null, free: () => {} };

/**
 * @internal Compiled kernels of a set of specs, with per-batch scratch. `what` names the owner in
 * errors (e.g. `'linear'`); `argument` is what a use after dispose names (e.g. `'f'`).
 */
export class KernelSet<Problem, Names extends string, Scratch = null> {
  private compiled?: Readonly<Partial<Record<Names, Kernel>>>;
  private compiling?: Promise<Readonly<Partial<Record<Names, Kernel>>>>;
  private readonly scratch = new Map<number, Scratch>();
  private ended = false;

  constructor(
    private readonly host: KernelHost,
    private readonly what: string,
    private readonly specs: Readonly<Partial<Record<Names, KernelSpec<Problem>>>>,
    private readonly policy: ScratchPolicy<Scratch> = NO_SCRATCH as unknown as ScratchPolicy<Scratch>,
    private readonly argument = what,
  ) {}

  /** Compiles every kernel (once), then allocates the scratch of `batch` (once per batch size). */
  async prepare(batch = 0): Promise<void> {
    this.assertLive();
    this.compiled ??= await (this.compiling ??= this.compileAll());
    // Disposed while the kernels compiled: allocate nothing.
    this.assertLive();
    if (!this.scratch.has(batch)) this.scratch.set(batch, this.policy.allocate(batch));
  }

  private async compileAll(): Promise<Readonly<Partial<Record<Names, Kernel>>>> {
    const names = Object.keys(this.specs) as Names[];
    const kernels = await Promise.all(
      names.map((name) => {
        const spec = this.specs[name] as KernelSpec<Problem>;
        const entry = spec.entry ?? 'main';
        const options = spec.constants ? { constants: spec.constants } : {};
        return this.host.kernel(`${spec.shader}.${entry}`, SHADERS[spec.shader], entry, options);
      }),
    );
    return Object.fromEntries(names.map((name, i) => [name, kernels[i]])) as Partial<Record<Names, Kernel>>;
  }

  /** Whether prepare(batch) has run. */
  isPrepared(batch = 0): boolean {
    return this.compiled !== undefined && this.scratch.has(batch);
  }

  /** The scratch of `batch`; throws unless prepare(batch) ran (a bug of the caller). */
  use(batch = 0): Scratch {
    this.assertLive();
    if (!this.compiled || !this.scratch.has(batch)) throw new Error(`${this.what}: prepare(${batch}) must run before encoding`);
    return this.scratch.get(batch) as Scratch;
  }

  /** The compiled kernel `name` (after prepare; a set may describe only some of its kernels). */
  kernel(name: Names): Kernel {
    if (!this.compiled) throw new Error(`${this.what}: prepare() must run before encoding`);
    const kernel = this.compiled[name];
    if (!kernel) throw new Error(`${this.what}: kernel ${name} is not part of this set`);
    return kernel;
  }

  /** The spec of kernel `name` (a set may describe only some of its kernels). */
  spec(name: Names): KernelSpec<Problem> {
    const spec = this.specs[name];
    if (!spec) throw new Error(`${this.what}: kernel ${name} is not part of this set`);
    return spec;
  }

  /**
   * Encodes kernel `name` for `problem`: its bindings, plus the `params` uniform packed from
   * `uniforms` when given, dispatched with the spec's geometry.
   */
  dispatch(pass: GPUComputePassEncoder, name: Names, problem: Problem, bindings: Record<string, BufferRegion>, uniforms?: Record<string, number>): void {
    const call = this.call(name, problem, bindings, uniforms);
    call.kernel.dispatch(pass, call.group, call.x, call.y, call.z);
  }

  /** What {@link dispatch} encodes — kernel, bind group and workgroup counts — without encoding it. */
  call(name: Names, problem: Problem, bindings: Record<string, BufferRegion>, uniforms?: Record<string, number>): KernelCall {
    const kernel = this.kernel(name);
    const uniform = uniforms ? this.host.params(kernel, uniforms) : undefined;
    const resources = uniform ? { ...bindings, params: uniform } : bindings;
    const [x, y = 1, z = 1] = this.spec(name).groups(problem);
    return { kernel, group: kernel.bind(resources), x, y, z, uniform };
  }

  /** Frees every batch's scratch; later use throws DisposedError (`argument`). Safe to call twice. */
  dispose(): void {
    if (this.ended) return;
    this.ended = true;
    for (const scratch of this.scratch.values()) this.policy.free(scratch);
    this.scratch.clear();
  }

  private assertLive(): void {
    if (this.ended) throw new DisposedError(this.argument, `the ${this.what} was disposed`);
  }
}
