/**
 * `defineLayer`: an implicit layer whose f the user writes in WGSL, one output value per function
 * call; the library adds the bindings, the entry points, the gate and the dispatch sizes.
 *
 * Every function the user writes computes ONE value: `forward(row, i)` is f(u, Qd)[row, i],
 * `grad_input(row, i)` is (J_uᵀ ȳ)[row, i], `grad_qd(row, i)` is (J_Qdᵀ ȳ)[row, i] and
 * `grad_<name>(k)` is element k of ∂<name> summed over the rows. Each becomes a kernel with one
 * thread per value (shaders/custom_layer_main.wgsl).
 */
import type { Engine } from '../engine';
import { EngineMismatchError, LimitError, OptionError, ShapeError } from '../errors';
import { ShaderCompileError, type Kernel } from '../gpu/kernel';
import { CUSTOM_LAYER_WGSL } from '../gpu/shaders';
import { Tensor } from '../tensor';
import { readEngine, readOptions } from '../validate';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { AdjointIO, ForwardIO, ImplicitLayer } from './layer';
import { checkParam, upload, type ParamValue } from './params';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from './stage';
import { VectorOps, gridGroups } from './stages/common';

/** What {@link defineLayer} takes. */
export interface LayerDefinition {
  /** Row size d of the state (`[d]` or `[batch, d]`). */
  featureSize: number;
  /**
   * Parameters by name (each a WGSL identifier): tensors, used in place (an optimizer stepping
   * them changes the layer), or arrays uploaded as 1-D tensors. In WGSL each is
   * `var<storage, read> <name>: array<f32>` (flat, row-major), declared by the library.
   */
  params?: Readonly<Record<string, ParamValue>>;
  /**
   * WGSL defining `fn forward(row: u32, i: u32) -> f32`, the value f(u, Qd)[row, i], plus any
   * helper functions and constants. It may call: `rows()`, `features()`, `state(row, i)`,
   * `injected(row, i)`, the parameters by name, `training()`, `random_u32(counter)`,
   * `random_uniform(counter)` (see README "Your own layers").
   */
  forward: string;
  /**
   * WGSL defining `fn grad_input(row: u32, i: u32) -> f32` (Σ_j ȳ[row, j] ∂f[row, j]/∂u[row, i]),
   * `fn grad_qd(row: u32, i: u32) -> f32` (the same for Qd) and, for each parameter p,
   * `fn grad_p(k: u32) -> f32` (Σ_rows Σ_j ȳ ∂f/∂p[k]). It may call everything `forward` may,
   * `forward(row, i)` itself and `grad_output(row, i)` (ȳ).
   */
  adjoint: string;
  /** A name for error messages and kernel labels. Default `'custom layer'`. */
  name?: string;
}

const KNOWN_KEYS = ['featureSize', 'params', 'forward', 'adjoint', 'name'];
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]*$/;
/** The accessors of shaders/lib/custom_layer.wgsl and the user's own entry names: not parameter names. */
const TAKEN = new Set([
  'rows', 'features', 'state', 'injected', 'grad_output', 'training', 'random_u32', 'random_uniform',
  'forward', 'grad_input', 'grad_qd', 'gate', 'gate_value', 'params',
]);

/** A user function the library calls, with the signature it calls it with. */
interface Entry {
  fn: string;
  args: number;
  /** Which definition field must define it. */
  field: 'forward' | 'adjoint';
}

let nextLayerId = 1;

function signature(entry: Entry): string {
  return `fn ${entry.fn}(${entry.args === 2 ? 'row: u32, i: u32' : 'k: u32'}) -> f32`;
}

/** Rejects resource declarations and missing or mis-typed functions in one user source. */
function checkSource(field: 'forward' | 'adjoint', source: string, entries: Entry[], paramNames: string[]): void {
  let reflect: WgslReflect;
  try {
    reflect = new WgslReflect(source);
  } catch {
    return; // not parseable: the compiler reports it with line numbers
  }
  const declared = [...reflect.uniforms, ...reflect.storage, ...reflect.textures, ...reflect.samplers];
  for (const resource of declared) {
    const hint = paramNames.includes(resource.name)
      ? `the library declares parameter "${resource.name}" itself: remove this declaration`
      : `parameters are bound by the library: list "${resource.name}" in params and use it by name`;
    throw new ShaderCompileError(field, `declares the binding "${resource.name}" (@group(${resource.group}) @binding(${resource.binding})); ${hint}`);
  }
  const functions = new Map(reflect.functions.map((f) => [f.name, f]));
  for (const entry of entries.filter((e) => e.field === field)) {
    const fn = functions.get(entry.fn);
    if (!fn) throw new ShaderCompileError(field, `has no ${signature(entry)}`);
    const args = fn.arguments.map((a) => a.type?.name);
    if (args.length !== entry.args || args.some((t) => t !== 'u32') || fn.returnType?.name !== 'f32') {
      throw new ShaderCompileError(field, `${entry.fn} must be ${signature(entry)}, got fn ${entry.fn}(${args.join(', ')}) -> ${fn.returnType?.name ?? 'nothing'}`);
    }
  }
  if (field === 'adjoint') {
    for (const name of functions.keys()) {
      const param = name.startsWith('grad_') ? name.slice(5) : null;
      if (param && !['input', 'qd', 'output'].includes(param) && !paramNames.includes(param) && entries.every((e) => e.fn !== name)) {
        throw new ShaderCompileError('adjoint', `defines ${name} but there is no parameter "${param}" (params: ${paramNames.join(', ') || 'none'})`);
      }
    }
  }
}

function shapeOf(value: ParamValue): number[] {
  return value instanceof Tensor ? [...value.shape] : [value.length];
}

/** Checks the definition object and uploads its parameters. */
function checkDefinition(engine: Engine, definition: LayerDefinition): { name: string; params: Record<string, Tensor> } {
  readOptions(definition ?? null, 'definition', KNOWN_KEYS);
  const { featureSize, forward, adjoint, name = 'custom layer' } = definition;
  if (!Number.isInteger(featureSize) || featureSize < 1) throw new ShapeError('featureSize', `must be a positive integer, got ${String(featureSize)}`);
  if (typeof forward !== 'string') throw new OptionError('forward', 'must be WGSL source (a string)');
  if (typeof adjoint !== 'string') throw new OptionError('adjoint', 'must be WGSL source (a string)');
  if (typeof name !== 'string') throw new OptionError('name', 'must be a string');
  const given = definition.params ?? {};
  if (typeof given !== 'object' || given === null) throw new OptionError('params', 'must be an object of tensors or arrays');
  const entries = Object.entries(given);
  for (const [key, value] of entries) {
    if (!IDENTIFIER.test(key) || TAKEN.has(key) || key.startsWith('anchorax') || key.startsWith('rng_') || key.startsWith('gate_')) {
      throw new OptionError(`params.${key}`, 'must be a WGSL identifier that is not one of the accessors (rows, features, state, …)');
    }
    if (value === undefined) throw new ShapeError(`params.${key}`, 'is undefined');
    checkParam(engine, value, `params.${key}`, shapeOf(value));
  }
  // Uploaded only once every parameter has passed, so a rejected definition allocates nothing.
  const params: Record<string, Tensor> = {};
  for (const [key, value] of entries) params[key] = upload(engine, value, shapeOf(value));
  return { name, params };
}

/** An {@link ImplicitLayer} (and {@link Stage}) written in WGSL; build it with {@link defineLayer}. */
export class CustomLayer implements ImplicitLayer, Stage {
  readonly kind: string;
  readonly readsQd = true;
  readonly params: Readonly<Record<string, Tensor>>;
  private vector?: VectorOps;

  /** @internal Use {@link defineLayer}. */
  constructor(
    readonly engine: Engine,
    readonly featureSize: number,
    name: string,
    params: Record<string, Tensor>,
    private readonly kernels: { forward: Kernel; gradInput: Kernel; gradQd: Kernel; gradParams: Record<string, Kernel> },
  ) {
    this.kind = name;
    this.params = Object.freeze(params);
  }

  /** As a stage: rows of featureSize. */
  get inputSize(): number {
    return this.featureSize;
  }

  async prepare(batch: number): Promise<void> {
    this.engine.assertAlive(this.kind);
    this.engine.assertFits(batch * this.featureSize * 4, 'Qd');
    this.vector ??= await VectorOps.create(this.engine);
  }

  /** Buffers every kernel of the layer may read, by binding name. */
  private bindings(io: { input: ForwardIO['input']; Qd: ForwardIO['Qd']; gate: GPUBuffer }, gradOutput: ForwardIO['input'], output: ForwardIO['input']) {
    const resources: Record<string, ForwardIO['input']> = {
      gate: io.gate, anchorax_u: io.input, anchorax_qd: io.Qd, anchorax_g_out: gradOutput, anchorax_out: output,
    };
    for (const [name, tensor] of Object.entries(this.params)) resources[name] = tensor.buffer;
    return resources;
  }

  private run(pass: GPUComputePassEncoder, kernel: Kernel, resources: Record<string, ForwardIO['input']>, batch: number, count: number, accumulate = false): void {
    const sizes = this.engine.params(kernel, { rows: batch, features: this.featureSize, count, accumulate: accumulate ? 1 : 0 });
    kernel.dispatch(pass, kernel.bind({ ...resources, anchorax_sizes: sizes }), gridGroups(this.engine, count));
  }

  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO | StageForwardIO, batch: number): void {
    this.run(pass, this.kernels.forward, this.bindings(io, io.input, io.output), batch, batch * this.featureSize);
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: AdjointIO | StageAdjointIO, batch: number): void {
    const n = batch * this.featureSize;
    const withOutput = (output: ForwardIO['input']) => this.bindings(io, io.gradOutput, output);
    if (io.gradInput) {
      this.run(pass, this.kernels.gradInput, withOutput(io.gradInput), batch, n);
      if ('gradInputAdd' in io && io.gradInputAdd) {
        if (!this.vector) throw new Error(`${this.kind}: prepare() must run before encoding`);
        this.vector.copy(pass, io.gate, io.gradInputAdd, io.gradInput, n, true);
      }
    }
    const gradQd = io.gradQd;
    if (gradQd) {
      const { region, accumulate } = 'region' in gradQd ? gradQd : { region: gradQd, accumulate: false };
      this.run(pass, this.kernels.gradQd, withOutput(region), batch, n, accumulate);
    }
    for (const [name, buffer] of Object.entries(io.gradParams ?? {})) {
      const kernel = this.kernels.gradParams[name];
      if (kernel) this.run(pass, kernel, withOutput(buffer), batch, this.params[name].size);
    }
  }

  /** @internal As a stage of a sequential layer (rows of featureSize in and out). */
  instantiate(engine: Engine, inputSize: number, index: number): StageKernels {
    if (engine !== this.engine) throw new EngineMismatchError(`stages[${index}]`, `${this.kind} belongs to another engine`);
    if (inputSize !== this.featureSize) throw new ShapeError(`stages[${index}]`, `${this.kind} takes rows of ${this.featureSize} values, gets ${inputSize}`);
    return {
      outputSize: this.featureSize,
      prepare: (batch: number) => this.prepare(batch),
      encodeForward: (pass: GPUComputePassEncoder, io: StageForwardIO, batch: number) => this.encodeForward(pass, io, batch),
      encodeAdjoint: (pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number) => this.encodeAdjoint(pass, io, batch),
    };
  }
}

/**
 * Builds an implicit layer from WGSL functions (see {@link LayerDefinition}): the library declares
 * the parameters' bindings, wraps each function in a kernel with one thread per value it returns,
 * honours the solver's gate and dispatches. All kernels are compiled here, so WGSL mistakes
 * surface now. The layer works with every solver, jfb/gdeq/ift and optimizers, and as a stage of
 * `sequential`. Check the adjoint with `gradcheck` before training with it.
 *
 * ```ts
 * const f = await defineLayer(engine, {
 *   featureSize: d,
 *   params: { a },  // f(u) = tanh(a ⊙ u + Qd), a per-feature scale
 *   forward: `fn forward(row: u32, i: u32) -> f32 { return tanh(a[i] * state(row, i) + injected(row, i)); }`,
 *   adjoint: `
 *     fn slope(row: u32, i: u32) -> f32 { let y = forward(row, i); return grad_output(row, i) * (1.0 - y * y); }
 *     fn grad_input(row: u32, i: u32) -> f32 { return slope(row, i) * a[i]; }
 *     fn grad_qd(row: u32, i: u32) -> f32 { return slope(row, i); }
 *     fn grad_a(k: u32) -> f32 { var s = 0.0; for (var r = 0u; r < rows(); r++) { s += slope(r, k) * state(r, k); } return s; }`,
 * });
 * ```
 *
 * @throws OptionError (`'definition.<field>'` unknown, `'forward'`/`'adjoint'` not strings,
 * `'params.<name>'` not an identifier), ShapeError (`'featureSize'`, `'params.<name>'`),
 * NonFiniteError (`'params.<name>'`), ShaderCompileError (`'forward'`/`'adjoint'`: WGSL that does
 * not compile — the compiler's messages with the line in your source —, a missing or mis-typed
 * function, a binding declared in your WGSL, a grad_ function without a parameter;
 * `'params.<name>'`: a parameter forward never reads), LimitError (more parameters than the
 * device's storage-buffer limit allows), DeviceLostError.
 */
export async function defineLayer(engine: Engine, definition: LayerDefinition): Promise<CustomLayer> {
  readEngine(engine, 'engine', 'defineLayer');
  const { name, params } = checkDefinition(engine, definition);
  const paramNames = Object.keys(params);
  const entries: Entry[] = [
    { fn: 'forward', args: 2, field: 'forward' },
    { fn: 'grad_input', args: 2, field: 'adjoint' },
    { fn: 'grad_qd', args: 2, field: 'adjoint' },
    ...paramNames.map((p): Entry => ({ fn: `grad_${p}`, args: 1, field: 'adjoint' })),
  ];
  checkSource('forward', definition.forward, entries, paramNames);
  checkSource('adjoint', definition.adjoint, entries, paramNames);

  const declarations = paramNames.map((p, k) => `@group(0) @binding(${6 + k}) var<storage, read> ${p}: array<f32>;`).join('\n');
  const id = nextLayerId++;
  const compile = (entry: Entry): Promise<Kernel> => {
    const call = entry.args === 2 ? `${entry.fn}(e / anchorax_sizes.features, e % anchorax_sizes.features)` : `${entry.fn}(e)`;
    const parts = [
      { text: CUSTOM_LAYER_WGSL.head, where: 'library WGSL' },
      { text: declarations, where: 'parameter declarations' },
      { text: definition.forward, where: 'forward WGSL' },
      ...(entry.field === 'adjoint' ? [{ text: definition.adjoint, where: 'adjoint WGSL' }] : []),
      { text: CUSTOM_LAYER_WGSL.main.replace('= ANCHORAX_VALUE(e);', `= ${call};`), where: 'library WGSL' },
    ];
    const locate = (line: number): string => {
      let first = 1;
      for (const part of parts) {
        const count = part.text.split('\n').length;
        if (line < first + count) return `${part.where} line ${line - first + 1}`;
        first += count;
      }
      return `line ${line}`;
    };
    const source = parts.map((p) => p.text).join('\n');
    return engine.kernel(`custom${id}.${entry.fn}`, source, 'anchorax_main', locate).catch((err: unknown) => {
      const message = err instanceof Error ? err.message.replace(/^custom\d+\.\w+: /, '') : '';
      if (err instanceof LimitError) throw new LimitError('params', `${paramNames.length} parameters are too many for this device: ${message}`);
      if (!(err instanceof ShaderCompileError)) throw err;
      const hint = /unresolved|undeclared/.test(message)
        ? `\n(parameters: ${paramNames.join(', ') || 'none'}; accessors: rows, features, state, injected, grad_output, training, random_u32, random_uniform)`
        : '';
      throw new ShaderCompileError(entry.field, `${entry.fn}: ${message}${hint}`);
    });
  };
  const [forward, gradInput, gradQd, ...gradKernels] = await Promise.all(entries.map(compile));
  const used = new Set(forward.bindingNames);
  for (const p of paramNames) {
    if (!used.has(p)) throw new ShaderCompileError(`params.${p}`, 'is declared but forward never reads it (f does not depend on it)');
  }
  const gradParams = Object.fromEntries(paramNames.map((p, k) => [p, gradKernels[k]]));
  return new CustomLayer(engine, definition.featureSize, name, params, { forward, gradInput, gradQd, gradParams });
}
