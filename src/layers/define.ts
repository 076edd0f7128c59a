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
import type { AdjointIO, ForwardIO, ImplicitLayer } from './layer';
import { checkParam, upload, type ParamValue } from './params';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from './stage';
import { checkBatch } from './stages/workgroups';
import { VectorOps, gridGroups } from './stages/common';
import { declarations, moduleScopeNames, scan, structureProblem, type Declaration } from './wgsl-scan';

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

/** WGSL's keywords and reserved words (WGSL specification, "Keyword and Token Summary"). */
const WGSL_RESERVED = new Set(
  `alias break case const const_assert continue continuing default diagnostic discard else enable false fn for if let loop
  override requires return struct switch true var while
  NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await become cast catch class co_await
  co_return co_yield coherent column_major common compile compile_fragment concept const_cast consteval constexpr constinit
  crate debugger decltype delete demote demote_to_helper do dynamic_cast enum explicit export extends extern external
  fallthrough filter final finally friend from fxgroup get goto groupshared highp impl implements import inline instanceof
  interface layout lowp macro macro_rules match mediump meta mod module move mut mutable namespace new nil noexcept noinline
  nointerpolation non_coherent noncoherent noperspective null nullptr of operator package packoffset partition pass patch
  pixelfragment precise precision premerge priv protected pub public readonly ref regardless register reinterpret_cast
  require resource restrict self set shared sizeof smooth snorm static static_assert static_cast std subroutine super target
  template this thread_local throw trait try type typedef typeid typename typeof union unless unorm unsafe unsized use using
  varying virtual volatile wgsl where with writeonly yield`.split(/\s+/),
);

/** How the library declares parameter `name` at binding `binding`. */
const declaration = (name: string, binding: number): string => `@group(0) @binding(${binding}) var<storage, read> ${name}: array<f32>;`;

/** The library's part of every defineLayer kernel, read once from its source. */
interface Library {
  /** Names the library WGSL declares or relies on at module scope: not usable as parameter names. */
  names: Set<string>;
  /** Its storage buffers, by name. */
  storage: string[];
  /** Its functions, by name. */
  functions: Set<string>;
  /** Everything it declares at module scope. */
  declared: Set<string>;
}
let library: Library | undefined;
function libraryNames(): Library {
  if (!library) {
    const source = `${CUSTOM_LAYER_WGSL.head}\n${declaration('anchorax_param', 6)}\n${CUSTOM_LAYER_WGSL.main}`;
    const decls = declarations(source);
    library = {
      names: moduleScopeNames(source),
      storage: decls.filter((d) => d.keyword === 'var' && d.template[0] === 'storage' && d.name !== 'anchorax_param').map((d) => d.name as string),
      functions: new Set(decls.filter((d) => d.keyword === 'fn' && d.name).map((d) => d.name as string)),
      declared: new Set(decls.filter((d) => d.name).map((d) => d.name as string)),
    };
  }
  return library;
}

/** A user function the library calls, with the signature it calls it with. */
interface Entry {
  fn: string;
  args: number;
  /** Which definition field must define it. */
  field: 'forward' | 'adjoint';
}

let nextLayerId = 1;

/** Lets the event loop run (timers, I/O) before going on. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

function signature(entry: Entry): string {
  return `fn ${entry.fn}(${entry.args === 2 ? 'row: u32, i: u32' : 'k: u32'}) -> f32`;
}

/** What the library knows of one user source. */
interface Source {
  field: 'forward' | 'adjoint';
  /** The source, its leading directives blanked out (lines kept). */
  text: string;
  /** Its leading directives (`enable`, `requires`, `diagnostic`), which must open the composed WGSL. */
  directives: string;
  /** Line of the first directive in the user's source. */
  directivesLine: number;
  declarations: Declaration[];
}

const DIRECTIVES = new Set(['enable', 'requires', 'diagnostic']);

/**
 * Reads one user source and rejects, before anything is compiled, what the composition could not
 * survive (an unclosed comment or bracket, an unfinished declaration) and resource declarations.
 */
function readSource(field: 'forward' | 'adjoint', text: string, paramNames: string[]): Source {
  const where = `${field} WGSL`;
  const scanned = scan(text);
  const problem = structureProblem(text, scanned);
  if (problem) throw new ShaderCompileError(field, `${where} line ${problem.line}: ${problem.message}`);
  const found = declarations(text, scanned.tokens);
  for (const d of found) {
    const group = d.attributes.find((a) => a.name === 'group');
    const binding = d.attributes.find((a) => a.name === 'binding');
    if (d.keyword !== 'var' || (!group && !binding && !['uniform', 'storage'].includes(d.template[0] ?? ''))) continue;
    const name = d.name ?? '?';
    const hint = paramNames.includes(name)
      ? `the library declares parameter "${name}" itself: remove this declaration`
      : `parameters are bound by the library: list "${name}" in params and use it by name`;
    const at = `@group(${group?.args ?? '?'}) @binding(${binding?.args ?? '?'})`;
    throw new ShaderCompileError(field, `${where} line ${d.line}: declares the binding "${name}" (${at}); ${hint}`);
  }
  const lib = libraryNames();
  const clash = found.find((d) => d.name !== undefined && (lib.declared.has(d.name) || d.name.startsWith('anchorax')));
  if (clash) throw new ShaderCompileError(field, `${where} line ${clash.line}: declares "${clash.name}", a name of the library's WGSL: rename it`);
  let count = 0;
  while (count < found.length && DIRECTIVES.has(found[count].keyword)) count++;
  if (count === 0) return { field, text, directives: '', directivesLine: 1, declarations: found };
  const last = found[count - 1].end;
  const blanked = text.slice(0, last).replace(/[^\n\r]/g, ' ') + text.slice(last);
  return { field, text: blanked, directives: text.slice(found[0].start, last), directivesLine: found[0].line, declarations: found.slice(count) };
}

/** Why `entry` cannot be called as the library calls it, read from the declarations; null if it can. */
function entryProblem(entry: Entry, sources: Source[]): ShaderCompileError | null {
  const decls = sources.flatMap((s) => s.declarations);
  const aliases = new Map(decls.filter((d) => d.keyword === 'alias' && d.name).map((d) => [d.name as string, d.aliased]));
  const resolve = (type: string): string => {
    for (let k = 0; k < 8 && aliases.has(type); k++) type = aliases.get(type) as string;
    return type;
  };
  const fn = sources.find((s) => s.field === entry.field)?.declarations.find((d) => d.keyword === 'fn' && d.name === entry.fn);
  if (!fn) return new ShaderCompileError(entry.field, `has no ${signature(entry)}`);
  const args = fn.parameterTypes.map(resolve);
  const returns = resolve(fn.returnType);
  if (args.length !== entry.args || args.some((t) => t !== 'u32') || returns !== 'f32') {
    return new ShaderCompileError(entry.field, `${entry.fn} must be ${signature(entry)}, got fn ${entry.fn}(${fn.parameterTypes.join(', ')}) -> ${fn.returnType || 'nothing'}`);
  }
  return null;
}

/**
 * The module-scope names `entry`'s kernel reaches in the user's sources: every identifier the
 * functions it calls, directly or not, mention (a local name equal to a parameter's counts too).
 */
function reached(entry: Entry, sources: Source[]): Set<string> {
  const functions = new Map<string, Declaration>();
  for (const source of sources) for (const d of source.declarations) if (d.keyword === 'fn' && d.name) functions.set(d.name, d);
  const seen = new Set<string>([entry.fn]);
  const queue = [entry.fn];
  while (queue.length > 0) {
    const fn = functions.get(queue.pop() as string);
    for (const name of fn?.mentions ?? []) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (functions.has(name)) queue.push(name);
    }
  }
  return seen;
}

function shapeOf(value: ParamValue): number[] {
  return value instanceof Tensor ? [...value.shape] : [value.length];
}

/** Why `key` cannot name a parameter, or null. */
function nameProblem(key: string): string | null {
  if (!IDENTIFIER.test(key)) return 'must be a WGSL identifier (a letter, then letters, digits or _)';
  if (WGSL_RESERVED.has(key)) return 'is a WGSL keyword or reserved word';
  const { names } = libraryNames();
  if (names.has(key) || key.startsWith('anchorax') || key.startsWith('rng_') || key.startsWith('gate_')) {
    return 'is a name the library WGSL uses (accessors rows, features, state, injected, grad_output, training, random_u32, random_uniform, their helpers and WGSL types)';
  }
  if (['forward', 'grad_input', 'grad_qd'].includes(key)) return 'is the name of a function the layer defines';
  if (names.has(`grad_${key}`) || ['input', 'qd'].includes(key)) return `would make its gradient function grad_${key} clash with the library's or the layer's own`;
  return null;
}

/** Checks the definition object and its parameters (uploads nothing). */
function checkDefinition(engine: Engine, definition: LayerDefinition): { name: string; given: [string, ParamValue][] } {
  readOptions(definition ?? null, 'definition', KNOWN_KEYS);
  const { featureSize, forward, adjoint, name = 'custom layer' } = definition;
  if (!Number.isInteger(featureSize) || featureSize < 1) throw new ShapeError('featureSize', `must be a positive integer, got ${String(featureSize)}`);
  if (typeof forward !== 'string') throw new OptionError('forward', 'must be WGSL source (a string)');
  if (typeof adjoint !== 'string') throw new OptionError('adjoint', 'must be WGSL source (a string)');
  if (typeof name !== 'string') throw new OptionError('name', 'must be a string');
  const params = definition.params ?? {};
  if (typeof params !== 'object' || params === null) throw new OptionError('params', 'must be an object of tensors or arrays');
  const given = Object.entries(params);
  for (const [key, value] of given) {
    const problem = nameProblem(key);
    if (problem) throw new OptionError(`params.${key}`, problem);
    if (value === undefined) throw new ShapeError(`params.${key}`, 'is undefined');
    checkParam(engine, value, `params.${key}`, shapeOf(value));
  }
  const storage = libraryNames().storage.length + given.length;
  const limit = engine.device.limits.maxStorageBuffersPerShaderStage;
  if (storage > limit) {
    throw new LimitError('params', `${given.length} parameters are too many for this device: its kernels would bind ${storage} storage buffers; maxStorageBuffersPerShaderStage = ${limit}`);
  }
  return { name, given };
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
    checkBatch(batch);
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
 * `'params.<name>'` not an identifier, a WGSL keyword or reserved word, or a name the library's
 * WGSL uses), ShapeError (`'featureSize'`, `'params.<name>'`), NonFiniteError
 * (`'params.<name>'`), ShaderCompileError (`'forward'`/`'adjoint'`: WGSL that does not compile —
 * the compiler's messages with the line in your source —, an unclosed comment or bracket, a
 * missing or mis-typed function, a binding declared in your WGSL, a library name redeclared, a
 * grad_ function without a parameter; `'params.<name>'`: a parameter forward never reads),
 * LimitError (`'params'`: more parameters than the device's storage-buffer limit allows; checked
 * before anything is uploaded), DeviceLostError. Whatever fails, the arrays it uploaded are freed.
 *
 * Your WGSL runs on the GPU as written: a function that never returns hangs the device (see
 * the solvers' `timeoutMs`).
 */
export async function defineLayer(engine: Engine, definition: LayerDefinition): Promise<CustomLayer> {
  readEngine(engine, 'engine', 'defineLayer');
  const { name, given } = checkDefinition(engine, definition);
  const paramNames = given.map(([key]) => key);
  const entries: Entry[] = [
    { fn: 'forward', args: 2, field: 'forward' },
    { fn: 'grad_input', args: 2, field: 'adjoint' },
    { fn: 'grad_qd', args: 2, field: 'adjoint' },
    ...paramNames.map((p): Entry => ({ fn: `grad_${p}`, args: 1, field: 'adjoint' })),
  ];
  // Each step below runs for a time linear in its source; the event loop gets a turn between them.
  const forward = readSource('forward', definition.forward, paramNames);
  await nextTurn();
  const sources = [forward, readSource('adjoint', definition.adjoint, paramNames)];
  await nextTurn();
  // With balanced, complete declarations (readSource), the module-scope functions are known for sure.
  for (const entry of entries) {
    const problem = entryProblem(entry, sources);
    if (problem) throw problem;
  }
  const strayGrad = sources[1].declarations.find((d) => d.keyword === 'fn' && d.name?.startsWith('grad_') && !['grad_output', ...entries.map((e) => e.fn)].includes(d.name));
  if (strayGrad?.name) {
    throw new ShaderCompileError('adjoint', `defines ${strayGrad.name} but there is no parameter "${strayGrad.name.slice(5)}" (params: ${paramNames.join(', ') || 'none'})`);
  }
  // Uploaded only once every check above has passed, and freed again if compiling fails.
  const params: Record<string, Tensor> = {};
  const uploaded: Tensor[] = [];
  try {
    for (const [key, value] of given) {
      params[key] = upload(engine, value, shapeOf(value));
      if (params[key] !== value) uploaded.push(params[key]);
    }
    const kernels = await compileKernels(engine, entries, sources, paramNames);
    const forwardReads = new Set(kernels.forward.bindingNames);
    for (const p of paramNames) {
      if (!forwardReads.has(p)) throw new ShaderCompileError(`params.${p}`, 'is declared but forward never reads it (f does not depend on it)');
    }
    return new CustomLayer(engine, definition.featureSize, name, params, kernels);
  } catch (err) {
    for (const tensor of uploaded) tensor.dispose();
    throw err;
  }
}

/**
 * Compiles the layer's kernels. Dawn compiles the composed WGSL (two sources: forward's kernel
 * and one shared by every adjoint kernel, so each is parsed once); the bindings are reflected
 * from a small stand-in that has the library's WGSL and, for each kernel, a stub of the user's
 * function that mentions what the user's functions reach — never from the user's WGSL itself,
 * whose size and syntax are the user's.
 */
async function compileKernels(engine: Engine, entries: Entry[], sources: Source[], paramNames: string[]) {
  const lib = libraryNames();
  const declared = paramNames.map((p, k) => declaration(p, 6 + k)).join('\n');
  const id = nextLayerId++;
  const call = (entry: Entry): string => (entry.args === 2 ? `${entry.fn}(e / anchorax_sizes.features, e % anchorax_sizes.features)` : `${entry.fn}(e)`);
  const main = (entry: Entry): string =>
    CUSTOM_LAYER_WGSL.main.replace('= ANCHORAX_VALUE(e);', `= ${call(entry)};`).replace('fn anchorax_main(', `fn anchorax_${entry.fn}(`);
  const compose = (field: 'forward' | 'adjoint') => {
    const parts = [
      ...sources.slice(0, field === 'adjoint' ? 2 : 1).filter((s) => s.directives).map((s) => ({ text: s.directives, where: `${s.field} WGSL`, first: s.directivesLine })),
      { text: CUSTOM_LAYER_WGSL.head, where: 'library WGSL', first: 1 },
      { text: declared, where: 'parameter declarations', first: 1 },
      { text: sources[0].text, where: 'forward WGSL', first: 1 },
      ...(field === 'adjoint' ? [{ text: sources[1].text, where: 'adjoint WGSL', first: 1 }] : []),
      { text: entries.filter((e) => e.field === field).map(main).join('\n'), where: 'library WGSL', first: 1 },
    ];
    let first = 1;
    const starts = parts.map((part) => {
      const start = first;
      for (let k = part.text.indexOf('\n'); k >= 0; k = part.text.indexOf('\n', k + 1)) first++;
      first++;
      return start;
    });
    return { source: parts.map((p) => p.text).join('\n'), parts, starts };
  };
  const composed = { forward: compose('forward'), adjoint: compose('adjoint') };

  const compile = async (entry: Entry): Promise<Kernel> => {
    const { source, parts, starts } = composed[entry.field];
    const hit = new Set<string>();
    const locate = (line: number): string => {
      for (let k = parts.length - 1; k >= 0; k--) {
        if (line >= starts[k]) {
          hit.add(parts[k].where);
          return `${parts[k].where} line ${line - starts[k] + parts[k].first}`;
        }
      }
      return `line ${line}`;
    };
    // The stand-in reflected for the bindings: the library, the parameters, and a stub of the
    // user's function reading every library function, library buffer and parameter it reaches.
    const reach = reached(entry, sources.slice(0, entry.field === 'adjoint' ? 2 : 1));
    const reads = [...reach].filter((n) => paramNames.includes(n) || lib.storage.includes(n)).map((n) => `  let r_${n} = ${n}[0];`);
    const calls = [...reach].filter((n) => lib.functions.has(n)).map((n) => `  let c_${n} = ${n}();`);
    const stub = `fn ${entry.fn}(${entry.args === 2 ? 'row: u32, i: u32' : 'k: u32'}) -> f32 {\n${[...reads, ...calls].join('\n')}\n  return 0.0;\n}`;
    const layoutSource = [CUSTOM_LAYER_WGSL.head, declared, stub, main(entry)].join('\n');
    try {
      return await engine.kernel(`custom${id}.${entry.fn}`, source, `anchorax_${entry.fn}`, { locate, layoutSource });
    } catch (err) {
      if (!(err instanceof ShaderCompileError)) throw err;
      // Errors only in the library's lines: the user's function is missing or has another signature.
      const userLines = [...hit].some((where) => where !== 'library WGSL');
      const problem = userLines ? null : entries.filter((e) => e.field === entry.field).map((e) => entryProblem(e, sources)).find((p) => p);
      if (problem) throw problem;
      const message = err.message.replace(/^custom\d+\.\w+: /, '');
      const hint = /unresolved|undeclared/.test(message)
        ? `\n(parameters: ${paramNames.join(', ') || 'none'}; accessors: rows, features, state, injected, grad_output, training, random_u32, random_uniform)`
        : '';
      throw new ShaderCompileError(entry.field, `${message}${hint}`);
    }
  };
  // forward first: its source is part of every other kernel's, so its errors are reported once, as forward's.
  const forward = await compile(entries[0]);
  const [gradInput, gradQd, ...gradKernels] = await Promise.all(entries.slice(1).map(compile));
  const gradParams = Object.fromEntries(paramNames.map((p, k) => [p, gradKernels[k]]));
  return { forward, gradInput, gradQd, gradParams };
}
