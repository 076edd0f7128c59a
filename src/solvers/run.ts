/**
 * What every solver shares: input checks, the GPU buffers of one solve (control block, partial
 * sums, best-so-far), the common kernels (evaluate, residual sums, finish, commit), and the
 * scheduler that encodes iterations in chunks and looks at the GPU's convergence flag once per
 * chunk — with the next chunk already submitted, so the readback latency overlaps GPU work.
 */
import type { Engine } from '../engine';
import { AnchoraxError, DeviceLostError, ShapeError, OptionError, TimeoutError } from '../errors';
import type { BufferRegion, Kernel } from '../gpu/kernel';
import { SHADERS, builtReflection, wgslConstant, type ShaderName } from '../gpu/shaders';
import type { FusedProduct } from '../layers/dense';
import type { FusedPicardPath, FusedPrefix, FusedStageTail, ImplicitLayer } from '../layers/layer';
import { Tensor } from '../tensor';
import { CONTROL_HEADER_BYTES, CONTROL_HEADER_SIZE, TRACE_ENTRY_BYTES, decodeControl, initialControl, type ControlSnapshot } from './control';
import { NO_STAGE, STAGE_STEP_THREADS } from './stage-tail';
import { AUTO_LONGEST_CHUNK, resolveOptions, type ResolvedOptions, type SolverName, type SolverOptions } from './options';
import { readLayer, readTensor } from '../validate';
import { ChunkPace } from './pace';
import { record, replay, type Recording } from './replay';
import type { BroydenFactors, SolveResult, SolveStats, SolveStatus } from '../results';

/** A finish mode of shaders/finish.wgsl (one of FinishMode's values). */
export type FinishMode = number & { readonly finishMode: true };

/** The value of finish mode `name`, declared in shaders/lib/finish_step.wgsl. */
const finishMode = (name: string): FinishMode => wgslConstant('finish', name, 'u32') as FinishMode;

/** Finish modes of shaders/finish.wgsl, reflected from its WGSL (the `MODE_*` constants). */
export const FinishMode = {
  picardFirst: finishMode('MODE_PICARD_FIRST'),
  picard: finishMode('MODE_PICARD'),
  andersonFirst: finishMode('MODE_ANDERSON_FIRST'),
  anderson: finishMode('MODE_ANDERSON'),
  broydenFirst: finishMode('MODE_BROYDEN_FIRST'),
  broyden: finishMode('MODE_BROYDEN'),
  /** No measurement: only advances the evaluation index past an evaluation (see countEvaluation). */
  advance: finishMode('MODE_ADVANCE'),
} as const;

/**
 * Largest number of workgroups a reduction uses (finish sums its partials in one workgroup). The
 * reduction kernels run 64 threads per workgroup (shaders/lib/reduce.wgsl at 64 threads) over 256 elements
 * each (REDUCE_ELEMENTS), so a GPU has as many threads in flight, each summing as many elements,
 * as with the earlier 256 workgroups of 256 threads over 1024 elements each.
 */
const MAX_REDUCE_GROUPS = 1024;
const REDUCE_ELEMENTS = 256;
const MAX_ELEMENT_GROUPS = 65535;

/**
 * The largest buffers `solver` will allocate, with the argument to blame when one does not fit.
 * Checked before anything is allocated, so a problem too large for the device fails at once and
 * leaves the pool as it was.
 */
function largestBuffers(solver: SolverName, opts: ResolvedOptions, n: number, stride: number): [number, string][] {
  const buffers: [number, string][] = [
    [n * 4, 'Qd'],
    [controlBytes(opts), 'options.maxDepth'],
  ];
  if (solver === 'anderson') buffers.push([(opts.windowSize + 1) * stride * 4, 'options.windowSize']);
  // Broyden keeps U and Vᵀ in one buffer, and x, x', g, g' as four slots of another (broyden.ts).
  if (solver === 'broyden') buffers.push([2 * opts.lbfgsThres * stride * 4, 'options.lbfgsThres'], [4 * stride * 4, 'Qd']);
  return buffers;
}

/** Entries of the control block's trace: every measurement with `trace`, else a placeholder. */
function traceEntries(opts: ResolvedOptions): number {
  return opts.trace ? opts.maxDepth + 2 : 1;
}

function controlBytes(opts: ResolvedOptions): number {
  return CONTROL_HEADER_BYTES + traceEntries(opts) * TRACE_ENTRY_BYTES;
}

/**
 * How many iterate calls each chunk of a solve encodes. A fixed `checkEvery` gives that many
 * every chunk. `'auto'` starts with `first` calls and doubles each chunk up to the longest
 * (AUTO_LONGEST_CHUNK iterations) while the residual is far from eps; from the first readback on,
 * the residual's rate of decrease (since the starting residual, then since the last readback) cuts
 * a chunk to the calls that rate says are still needed (never below `first`). So a 100-iteration solve reads back 4 times, and one that converges early skips
 * few encoded iterations. `callIterations`: iterations per call (the fused Picard kernel runs
 * several per dispatch).
 */
class ChunkSchedule {
  private chunks = 0;
  private readonly longest: number;
  private last?: { residual: number; iterations: number };
  /** Calls still needed past those encoded, by the measured rate (Infinity: unknown). */
  private needed = Infinity;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly first: number,
    private readonly callIterations: number,
  ) {
    this.longest = Math.max(first, Math.floor(AUTO_LONGEST_CHUNK / callIterations));
  }

  /** The calls of the next chunk (the caller bounds them by the solve's end). */
  next(): number {
    if (!this.opts.adaptiveChunks) return this.first;
    const grown = Math.min(this.first * 2 ** Math.min(this.chunks, 30), this.longest);
    this.chunks++;
    const calls = Math.max(this.first, Math.min(grown, this.needed));
    if (Number.isFinite(this.needed)) this.needed = Math.max(0, this.needed - calls);
    return calls;
  }

  /** Takes a readback that arrived when `encoded` calls were encoded. */
  observe(snapshot: ControlSnapshot, encoded: number): void {
    if (!this.opts.adaptiveChunks) return;
    const measure = (abs: number, rel: number): number => (this.opts.stopMode === 'rel' ? rel : abs);
    const residual = measure(snapshot.bestAbs, snapshot.bestRel);
    const iterations = snapshot.nstep;
    const last = this.last ?? (snapshot.initial ? { residual: measure(snapshot.initial.abs, snapshot.initial.rel), iterations: 0 } : undefined);
    this.last = { residual, iterations };
    if (!last || !(this.opts.eps > 0) || !(residual > 0) || !Number.isFinite(residual) || iterations <= last.iterations) return;
    const rate = Math.log(residual / last.residual) / (iterations - last.iterations);
    if (!(rate < 0)) {
      this.needed = Infinity;
      return;
    }
    // Iterations to reach eps at this rate, less those encoded past the readback already.
    const toGo = Math.log(this.opts.eps / residual) / rate;
    const ahead = encoded * this.callIterations - iterations;
    this.needed = Math.max(0, Math.ceil((toGo - ahead) / this.callIterations));
  }
}

/**
 * Largest number of workgroups of a fused step kernel (lib/step.wgsl): each of them sums all the
 * partials of the step before, so their count is kept small (a step's cost grows with its square).
 */
const MAX_STEP_GROUPS = 256;
/**
 * The same on a CPU adapter (SwiftShader): there every workgroup's reduction is a chain of fiber
 * switches (docs/swiftshader-costs.md), and a handful of workgroups already fills the cores.
 */
const MAX_STEP_GROUPS_CPU = 2;
/**
 * A convolution's step kernels (picard_conv_step.wgsl, anderson_conv_measure.wgsl,
 * broyden_conv_step.wgsl) run the generic steps' workgroups (`stepGroups`): on a GPU only while
 * each thread takes at most CONV_STEP_ELEMENTS outputs (the convolution's own forward has a thread
 * per output); a CPU adapter's few workgroups fill its cores.
 */
const CONV_STEP_ELEMENTS = 4;
/**
 * On a CPU adapter, the most workgroups a dense step kernel (picard_dense_step, anderson_dense_step,
 * broyden_dense_step) may have: measured on SwiftShader (d = 256, batch 64: 64 workgroups), the
 * dense Picard step took 1.5× the layer's product plus a 2-workgroup step kernel, and the dense
 * Broyden step at d = 1024, batch 1 (16 workgroups) 1.7× the generic kernels.
 */
const CPU_DENSE_STEP_GROUPS = 8;

/** @internal What the fused steps of one solve share (lib/step.wgsl). */
export interface StepState {
  /** The second control header: the step kernels of even iterations read it, those of odd ones ctrl. */
  ctrlB: GPUBuffer;
  /** Residual partial sums, two halves of `groups` vec4: step t writes half t mod 2. */
  partials: GPUBuffer;
  /** Workgroups of the generic step kernels. */
  groups: number;
  /** Partials per half (at least `groups`). */
  half: number;
}

/** Hooks of {@link SolveRun.run} besides init and iterate. */
export interface RunHooks {
  /**
   * The solve's start (u0 or zeros into the state), submitted on its own before the first chunk
   * (in the same error scopes), so the GPU starts while the CPU encodes that chunk.
   */
  start?: (encoder: GPUCommandEncoder) => void;
  /** Encoded after the last iteration, into the same pass (the fused steps' final measurement). */
  tail?: (pass: GPUComputePassEncoder, end: number) => void;
  /** Encoded after each chunk's pass, before its readback. */
  close?: (encoder: GPUCommandEncoder) => void;
}

/**
 * @internal What a solver builds before iterating, besides the SolveRun's buffers: the arguments
 * of {@link SolveRun.run}, and what the result needs after the iterations. Built once per solve
 * program (src/solvers/program.ts), so a cached program's solve encodes from it directly.
 */
export interface Plan {
  init: (encoder: GPUCommandEncoder) => void;
  iterate: (pass: GPUComputePassEncoder, t: number) => void;
  first: number;
  end: number;
  perSubmit?: number;
  callIterations?: number;
  hooks?: RunHooks;
  /** Broyden's factors of the best iterate (returnB), made after the iterations. */
  factors?: (snapshot: ControlSnapshot) => Promise<BroydenFactors | undefined>;
}

/** @internal One solve in progress (the scheduler every solver runs on). */
export class SolveRun {
  /** This solve's options (a cached program's next solve brings its own: see rebind). */
  opts: ResolvedOptions;
  /** This solve's Qd (a cached program's solves bring the same buffer). */
  Qd: Tensor;
  /**
   * Whether the run is a cached program (src/solvers/program.ts) that outlives this solve: its
   * buffers and uniform pins stay, and the result is copied out of them (see out).
   */
  keep = false;
  /**
   * A kept run's own copy of Qd, which its bind groups bind instead of Qd's buffer: each solve
   * copies its Qd in first (its first chunk), so the program serves any Qd tensor of its shape —
   * a training loop's fresh Qd per batch included (see qdBuffer).
   */
  private qdCopy?: GPUBuffer;
  /** The result's buffers of a kept run's solve, which each chunk copies the best iterate into. */
  private out?: { u: GPUBuffer; prev: GPUBuffer };
  /**
   * A kept run's start from zeros, encoded and finished at the end of its solve before (see
   * prepareStart): the next solve without u0 submits it as it is.
   */
  private preparedStart?: GPUCommandBuffer;
  /** This solve's start went ahead of its checks (startEarly): the first chunk has none. */
  private startedEarly = false;
  /** When each chunk's readback is mapped (src/solvers/pace.ts); a kept run keeps its rate. */
  private readonly pace: ChunkPace;
  /** Rows of the state (1 for an unbatched [d] state). */
  readonly batch: number;
  /** Flattened state size. */
  readonly n: number;
  /** n rounded up so that slots of a ring start 256-byte aligned (bindable by offset). */
  readonly stride: number;
  /** Workgroups of reduction kernels. */
  readonly reduceGroups: number;
  /** Workgroups of elementwise kernels (256 threads, grid-stride). */
  readonly elementGroups: number;
  readonly ctrl: GPUBuffer;
  readonly partials: GPUBuffer;
  readonly bestU: GPUBuffer;
  readonly bestPrev: GPUBuffer;
  private readonly scratch: GPUBuffer[] = [];
  /** Uniform buffers of this solve's bind groups, pinned until the chunks are done (see params). */
  private readonly pinned = new Set<GPUBuffer>();
  private readonly kernels: Map<ShaderName, Kernel>;
  /** Uniform buffers of per-solve constant configurations (see solveParams). */
  private readonly constantParams = new Map<string, GPUBuffer>();
  private steps?: StepState;
  /** The iterations' recorded evaluations in the chunk being encoded, by replay key (see evaluate). */
  private readonly recordings = new Map<number, Recording>();

  private constructor(
    readonly solver: SolverName,
    readonly engine: Engine,
    readonly layer: ImplicitLayer,
    Qd: Tensor,
    options: ResolvedOptions,
    kernels: Map<ShaderName, Kernel>,
  ) {
    this.opts = options;
    this.Qd = Qd;
    this.kernels = kernels;
    this.pace = new ChunkPace(engine);
    this.batch = Qd.shape.length === 2 ? Qd.shape[0] : 1;
    this.n = Qd.size;
    this.stride = SolveRun.strideOf(this.n);
    this.reduceGroups = Math.min(MAX_REDUCE_GROUPS, Math.ceil(this.n / REDUCE_ELEMENTS));
    this.elementGroups = Math.min(MAX_ELEMENT_GROUPS, Math.ceil(this.n / 256));
    this.ctrl = this.scratchBuffer(controlBytes(options) / 4);
    this.partials = this.scratchBuffer(4 * this.reduceGroups);
    this.bestU = engine.allocate(this.n * 4, 'Qd');
    this.bestPrev = engine.allocate(this.n * 4, 'Qd');
  }

  private static strideOf(n: number): number {
    return Math.ceil(n / 64) * 64;
  }

  /**
   * The first part of a solve's checks, before anything is compiled or allocated (see
   * {@link compile}): the layer, the engine, Qd, and the options resolved (returned); then
   * {@link checkRest}. Together:
   * @throws OptionError (`'f'`, `'options…'`), ShapeError (`'Qd'`, `'options.u0'`), DisposedError /
   * EngineMismatchError (`'Qd'`, `'options.u0'`, `'f.params.<name>'`), LimitError, DeviceLostError.
   */
  static checkCall(solver: SolverName, layer: ImplicitLayer, Qd: Tensor, options: SolverOptions | undefined): ResolvedOptions {
    readLayer(layer, 'f');
    const engine = layer.engine;
    engine.assertAlive(solver);
    readTensor(Qd, 'Qd', engine);
    const d = layer.featureSize;
    const shapeOk = (Qd.shape.length === 1 && Qd.shape[0] === d) || (Qd.shape.length === 2 && Qd.shape[1] === d);
    if (!shapeOk) throw new ShapeError('Qd', `must have shape [${d}] or [batch, ${d}], got [${Qd.shape.join(', ')}]`);
    return resolveOptions(solver, options);
  }

  /** The rest of a solve's checks (after {@link checkCall}): u0, the parameters, and the problem against the device limits. */
  static checkRest(solver: SolverName, layer: ImplicitLayer, Qd: Tensor, opts: ResolvedOptions): void {
    const engine = layer.engine;
    if (opts.u0) {
      opts.u0.assertUsable(engine, 'options.u0');
      if (opts.u0.shape.join() !== Qd.shape.join()) {
        throw new ShapeError('options.u0', `must have Qd's shape [${Qd.shape.join(', ')}], got [${opts.u0.shape.join(', ')}]`);
      }
    }
    for (const [name, param] of Object.entries(layer.params)) {
      if (!(param instanceof Tensor)) throw new OptionError(`f.params.${name}`, 'must be a Tensor');
      param.assertUsable(engine, `f.params.${name}`);
    }
    const stride = SolveRun.strideOf(Qd.size);
    for (const [bytes, argument] of largestBuffers(solver, opts, Qd.size, stride)) engine.assertFits(bytes, argument);
  }

  /** After the checks: compiles what the solve needs, checks again, then makes its buffers. */
  static async compile(solver: SolverName, layer: ImplicitLayer, Qd: Tensor, opts: ResolvedOptions, kernels: readonly ShaderName[]): Promise<SolveRun> {
    const engine = layer.engine;
    const compiled = new Map<ShaderName, Kernel>();
    const needed: ShaderName[] = ['residual', 'finish', 'commit', ...kernels];
    for (const name of needed) compiled.set(name, await engine.kernel(name, SHADERS[name]));
    await layer.prepare(Qd.shape.length === 2 ? Qd.shape[0] : 1);
    await engine.settleWraps();
    SolveRun.recheck(solver, layer, Qd, opts);
    return new SolveRun(solver, engine, layer, Qd, opts, compiled);
  }

  /**
   * Checked again after an await: Qd, u0 or a parameter may have been disposed while the kernels
   * compiled (or the device may have rejected a wrapped buffer).
   */
  static recheck(solver: SolverName, layer: ImplicitLayer, Qd: Tensor, opts: ResolvedOptions): void {
    const engine = layer.engine;
    engine.assertAlive(solver);
    Qd.assertUsable(engine, 'Qd');
    opts.u0?.assertUsable(engine, 'options.u0');
    for (const [name, param] of Object.entries(layer.params)) param.assertUsable(engine, `f.params.${name}`);
  }

  /** A kept run's next solve: its own Qd tensor (the same buffer) and options (the same program). */
  rebind(Qd: Tensor, opts: ResolvedOptions): void {
    this.Qd = Qd;
    this.opts = opts;
    this.startedEarly = false;
  }

  /** The Qd buffer the solve's kernels bind: a kept run's own copy (see qdCopy), else Qd's. */
  get qdBuffer(): GPUBuffer {
    if (!this.keep) return this.Qd.buffer;
    this.qdCopy ??= this.scratchBuffer(this.n);
    return this.qdCopy;
  }

  /** Bytes of the GPU buffers the run holds (its scratch and best iterate). */
  get heldBytes(): number {
    return this.scratch.reduce((sum, buffer) => sum + buffer.size, this.bestU.size + this.bestPrev.size);
  }

  /** The uniform buffers the run's bind groups use (pinned by it). */
  get uniforms(): Iterable<GPUBuffer> {
    return this.pinned;
  }

  /** Frees a kept run: its buffers back to the pool, its uniform pins given back. */
  dispose(): void {
    // `out` is still here when a solve failed after its chunks (Broyden's factors).
    const out = this.out ? [this.out.u, this.out.prev] : [];
    for (const buffer of [...this.scratch, this.bestU, this.bestPrev, ...out]) this.engine.releaseBuffer(buffer);
    this.scratch.length = 0;
    this.out = undefined;
    this.preparedStart = undefined;
    this.unpinAll();
  }

  /** The start to submit: the prepared one when this solve starts from zeros, else `start`. */
  private startOf(start: RunHooks['start']): RunHooks['start'] | GPUCommandBuffer | undefined {
    if (this.startedEarly) {
      this.startedEarly = false;
      return undefined;
    }
    const prepared = this.preparedStart;
    this.preparedStart = undefined;
    return prepared && !this.opts.u0 ? prepared : start;
  }

  /**
   * Submits the prepared start (see prepareStart) now, when this solve starts from zeros: a
   * cached solve's first submit, before the checks that the start does not depend on (they
   * follow at once: a failing one leaves only the program's own state cleared). Returns whether
   * it did.
   */
  startEarly(): boolean {
    const prepared = this.preparedStart;
    if (!prepared || this.opts.u0) return false;
    this.preparedStart = undefined;
    this.engine.assertAlive(this.solver);
    this.engine.queueSubmit([prepared]);
    this.startedEarly = true;
    return true;
  }

  /**
   * Encodes a kept run's next start from zeros now (it clears buffers of the run's own, so it
   * cannot fail validation), so that solve's first submit needs no encoding.
   */
  prepareStart(plan: Plan): void {
    if (!this.keep || this.opts.u0 || !plan.hooks?.start) return;
    const encoder = this.engine.device.createCommandEncoder();
    plan.hooks.start(encoder);
    this.preparedStart = encoder.finish();
  }

  /** Runs `plan` and hands its result out. */
  async execute(plan: Plan): Promise<SolveResult> {
    const snapshot = await this.run(plan.init, plan.iterate, plan.first, plan.end, plan.perSubmit, plan.callIterations, plan.hooks);
    const B = await plan.factors?.(snapshot);
    return this.result(snapshot, B);
  }

  /** Compiles one more kernel for this solve, with the values of its `override` constants. */
  async addKernel(name: ShaderName, constants: Readonly<Record<string, number>>, entry = 'main'): Promise<void> {
    this.kernels.set(name, await this.entryKernel(name, constants, entry));
  }

  /** Another entry point of a kernel's source, compiled (not kept by name: the caller holds it). */
  async entryKernel(name: ShaderName, constants: Readonly<Record<string, number>>, entry: string): Promise<Kernel> {
    const kernel = await this.engine.kernel(name, SHADERS[name], entry, { constants });
    this.engine.assertAlive(this.solver);
    return kernel;
  }

  kernel(name: ShaderName): Kernel {
    const kernel = this.kernels.get(name);
    if (!kernel) throw new Error(`kernel ${name} was not compiled for this solve`);
    return kernel;
  }

  /** A scratch buffer of `floats` values (storage, or `usage`), returned to the pool when the solve ends. */
  scratchBuffer(floats: number, usage?: number): GPUBuffer {
    const buffer = this.engine.allocate(floats * 4, 'Qd', usage);
    this.scratch.push(buffer);
    return buffer;
  }

  /**
   * The uniform buffer of a per-solve constant configuration, by a short `key`: made (and pinned)
   * once per solve, so the iterations' encoding builds no uniform key.
   */
  private solveParams(key: string, name: ShaderName, values: () => Record<string, number>): GPUBuffer {
    let buffer = this.constantParams.get(key);
    if (!buffer) {
      buffer = this.params(name, values());
      this.constantParams.set(key, buffer);
    }
    return buffer;
  }

  /**
   * Uniform buffer of `name`'s params struct. Solvers make some bind groups once and use them in
   * every chunk, so the buffer is pinned (kept alive if the engine's cache drops it) until the
   * solve's chunks are done.
   */
  params(name: ShaderName, values: Record<string, number>): GPUBuffer {
    const buffer = this.engine.params(this.kernel(name), values);
    if (!this.pinned.has(buffer)) {
      this.pinned.add(buffer);
      this.engine.pin(buffer);
    }
    return buffer;
  }

  /** Ends the pins of `params` (after the last chunk: submitted work may still use the buffers). */
  private unpinAll(): void {
    for (const buffer of this.pinned) this.engine.unpin(buffer);
    this.pinned.clear();
    // Unpinned buffers may be evicted: ask the engine again next time.
    this.constantParams.clear();
  }

  /**
   * The layer's fused path for this batch (`fusedPicard`), unless `fused: false`; a path with a
   * prefix (kernels before the product) only for a solver that runs it (`withPrefix`).
   */
  fusedPath(withPrefix: boolean): FusedPicardPath | null {
    const path = this.opts.fused ? (this.layer.fusedPicard?.(this.batch) ?? null) : null;
    return path?.prefix && !withPrefix ? null : path;
  }

  /**
   * The layer's path for this batch when it ends in a stage kernel (`fusedStageTail`), unless
   * `fused: false`, when the solver has a step for its kind (`shaders`), the device binds it, and
   * its workgroups pay: a norm's (row, group) workgroups on a CPU adapter (`fewGroups`); a
   * convolution's outputs at most CONV_STEP_ELEMENTS per thread of the step's workgroups
   * (`stepGroups`), which a large convolution would leave with too few threads.
   */
  stageTail(shaders: Record<FusedStageTail['kind'], ShaderName>): FusedStageTail | null {
    const tail = this.opts.fused ? (this.layer.fusedStageTail?.(this.batch) ?? null) : null;
    if (!tail || !this.binds(shaders[tail.kind])) return null;
    if (tail.kind === 'norm') return this.fewGroups(tail.norm.grid[0] * tail.norm.grid[1]) ? tail : null;
    return this.engine.cpuAdapter || this.n <= this.stepGroups() * STAGE_STEP_THREADS * CONV_STEP_ELEMENTS ? tail : null;
  }

  /**
   * The dense product a fused step kernel may wrap (the layer's `fusedPicard(batch).product`), or
   * null: none, or one of too many workgroups for a CPU adapter (`fewGroups`), or
   * when the step's entry point (`shader`, `<stage>_<body>_main`) does not exist (a solver without
   * a step for that body, e.g. split-k's) or binds more storage buffers than the device allows
   * (counted from its build-time reflection).
   */
  denseProduct(path: FusedPicardPath | null, shader: ShaderName, stage: 'step' | 'measure' | 'head'): FusedProduct | null {
    const product = path?.kind === 'dense' ? path.product : null;
    if (!product) return null;
    const [gx, gy, gz] = product.groups;
    return this.fewGroups(gx * gy * gz) && this.binds(shader, `${stage}_${product.body}_main`) ? product : null;
  }

  /**
   * Whether a fused kernel of `workgroups` workgroups whose every workgroup sums a row of partials
   * first pays: not on a CPU adapter past CPU_DENSE_STEP_GROUPS, where each workgroup's prologue
   * costs more than the dispatch it saves (bench/prefix-head.ts: a layerNorm head at batch 16,
   * 16 workgroups, 1.07–1.13× the advance kernel).
   */
  fewGroups(workgroups: number): boolean {
    return !this.engine.cpuAdapter || workgroups <= CPU_DENSE_STEP_GROUPS;
  }

  /**
   * Whether entry `entry` of `shader` exists and this device can bind it: a device (an app's, a
   * browser's) may allow fewer storage buffers than a fused step binds (counted from the
   * kernel's build-time reflection).
   */
  binds(shader: ShaderName, entry = 'main'): boolean {
    const reflection = builtReflection(SHADERS[shader], entry);
    if (!reflection) return false;
    const storage = reflection.bindings.filter((b) => b.kind === 'storage' || b.kind === 'read-only-storage').length;
    return storage <= this.engine.device.limits.maxStorageBuffersPerShaderStage;
  }

  /**
   * Whether a dense step kernel (and Broyden's decide kernel) leaves one partial sum per thread
   * rather than a tree's total per workgroup, for readers that add a row in order
   * (lib/row_sums.wgsl): on a CPU adapter, where a dense step's ncols + 1 trees are each
   * log2(threads) + 2 barriers of ≈ 4 µs (docs/swiftshader-costs.md) and the rows stay short
   * (CPU_DENSE_STEP_GROUPS, MAX_STEP_GROUPS_CPU). A GPU keeps the trees: a serial sum over
   * hundreds of entries there is a chain of dependent loads.
   */
  get threadSums(): boolean {
    return this.engine.cpuAdapter;
  }

  /** Workgroups of the generic step kernels (lib/step.wgsl) for this state. */
  stepGroups(): number {
    return Math.min(this.engine.cpuAdapter ? MAX_STEP_GROUPS_CPU : MAX_STEP_GROUPS, Math.ceil(this.n / REDUCE_ELEMENTS));
  }

  /**
   * The fused steps' buffers (lib/step.wgsl), made on first use: halves of partials for the
   * generic step kernels' workgroups, or `atLeast` when a step kernel has more.
   */
  stepState(atLeast = 0): StepState {
    if (!this.steps) {
      const groups = this.stepGroups();
      const half = Math.max(groups, atLeast);
      // Room for the whole Control type (one trace entry), so kernels may bind it as either header.
      this.steps = { ctrlB: this.scratchBuffer((CONTROL_HEADER_BYTES + TRACE_ENTRY_BYTES) / 4), partials: this.scratchBuffer(2 * 4 * half), groups, half };
    }
    return this.steps;
  }

  /**
   * The control header current before the step kernel of iteration t (the one it reads, and the
   * gate of that iteration's evaluations): ctrl for odd t, the second header for even t.
   */
  header(t: number): GPUBuffer {
    return t % 2 === 1 ? this.ctrl : this.stepState().ctrlB;
  }

  /**
   * The uniform members of the step of iteration t (lib/step.wgsl) with the end-of-iteration rules
   * of `mode`: which header it reads, and which half of the partials it reads (`partialGroups`
   * of them) and writes.
   */
  stepRules(mode: FinishMode, t: number, partialGroups: number): Record<string, number> {
    const steps = this.stepState();
    const parity = t % 2;
    return {
      ...this.finishRules(), mode, header_in_b: 1 - parity, partial_groups: partialGroups,
      partial_in: (1 - parity) * steps.half, partial_out: parity * steps.half, state_size: this.n, m: 0, n: 0, k: 0, stride: 0, slots: 0, reg: 0, beta: 0, chunk: 0, splits: 0, split_in: 0, split_out: 0,
      thread_sums: 0, ...NO_STAGE,
    };
  }

  /**
   * After a chunk whose last step was that of iteration `t`: when that step wrote the second
   * header, copies it into ctrl, where the readback and the non-fused kernels look (the next
   * step may then read either: both hold the same header).
   */
  closeSteps(encoder: GPUCommandEncoder, t: number): void {
    if (t % 2 === 1) encoder.copyBufferToBuffer(this.stepState().ctrlB, 0, this.ctrl, 0, CONTROL_HEADER_SIZE);
  }

  /** Slot `index` of a ring buffer laid out with `stride`. */
  slot(ring: GPUBuffer, index: number): BufferRegion {
    return { buffer: ring, offset: index * this.stride * 4, size: this.n * 4 };
  }

  /**
   * output = f(input, Qd), skipped on the GPU once the solve is done. The layer's gate is the
   * control block, whose words 1–3 (evaluation index, key, noise flag) drive stochastic layers.
   * The index must be advanced after every evaluation, before the next one: `finish` does it for
   * the evaluation it measures, the line search for each trial, `countEvaluation` otherwise.
   * `gate`: the header current for this evaluation (the fused steps alternate two, see header).
   * `replayKey`: a small number the caller gives each distinct (input, output, gate) set it
   * evaluates every iteration; the set's evaluation is then recorded once per chunk and replayed
   * (src/solvers/replay.ts).
   */
  evaluate(pass: GPUComputePassEncoder, input: BufferRegion, output: BufferRegion, gate: GPUBuffer = this.ctrl, replayKey?: number): void {
    const io = { input, output, Qd: this.qdBuffer, gate };
    this.encodeReplayed(pass, replayKey, (target) => this.layer.encodeForward(target, io, this.batch));
  }

  /** The kernels of a fused path's prefix, prefix(input) into prefix.output (gate and replayKey as for evaluate). */
  evaluatePrefix(pass: GPUComputePassEncoder, prefix: FusedPrefix, input: BufferRegion, gate: GPUBuffer, replayKey?: number): void {
    const io = { input, output: prefix.output, Qd: this.qdBuffer, gate };
    this.encodeReplayed(pass, replayKey, (target) => prefix.encode(target, io, this.batch));
  }

  /**
   * `encode(pass)`, or with `replayKey` (the caller's name for the buffer set, its slots and gate)
   * recorded at its first use in this chunk and replayed after (src/solvers/replay.ts).
   */
  private encodeReplayed(pass: GPUComputePassEncoder, replayKey: number | undefined, encode: (target: GPUComputePassEncoder) => void): void {
    let recording = replayKey === undefined ? null : this.recordings.get(replayKey);
    if (recording) {
      replay(this.engine, pass, recording);
      return;
    }
    if (replayKey !== undefined && recording === undefined) {
      recording = record(this.engine, encode);
      this.recordings.set(replayKey, recording);
      if (recording) {
        replay(this.engine, pass, recording);
        return;
      }
    }
    encode(pass);
  }

  /** Advances the evaluation index past an evaluation that no `finish` measures (one workgroup). */
  countEvaluation(pass: GPUComputePassEncoder): void {
    this.finish(pass, FinishMode.advance);
  }

  /** Residual partial sums of y = f(x) into `partials`. */
  residual(pass: GPUComputePassEncoder, x: BufferRegion, y: BufferRegion, gateOnEval = false): void {
    const kernel = this.kernel('residual');
    const params = this.solveParams(gateOnEval ? 'residual:eval' : 'residual', 'residual', () => ({ n: this.n, groups: this.reduceGroups, gate_on_eval: gateOnEval ? 1 : 0 }));
    kernel.dispatch(pass, kernel.bind({ ctrl: this.ctrl, params, x, y, partials: this.partials }), this.reduceGroups);
  }

  /** Measures, keeps the best, counts and decides whether to stop (one workgroup). */
  /** The end-of-iteration rules' uniform members (shaders/lib/finish_step.wgsl). */
  finishRules(): Record<string, number> {
    const o = this.opts;
    return {
      eps: o.eps,
      stop_rel: o.stopMode === 'rel' ? 1 : 0,
      return_final: o.returnFinal ? 1 : 0,
      max_depth: o.maxDepth,
      trace_cap: traceEntries(o),
      memory: o.lbfgsThres,
      line_search: this.solver === 'broyden' && o.ls ? 1 : 0,
      stall_steps: o.stallSteps,
    };
  }

  finish(pass: GPUComputePassEncoder, mode: FinishMode): void {
    const kernel = this.kernel('finish');
    const params = this.solveParams(`finish:${mode}`, 'finish', () => ({ ...this.finishRules(), groups: this.reduceGroups, mode }));
    kernel.dispatch(pass, kernel.bind({ ctrl: this.ctrl, params, partials: this.partials }), 1);
  }

  /** best <- (candidate, previous) when finish found an improvement. */
  commit(pass: GPUComputePassEncoder, candidate: BufferRegion, previous: BufferRegion): void {
    this.commitInto(pass, candidate, previous, this.bestU, this.bestPrev, this.n);
  }

  /** The same conditional copy of `count` floats into any pair of buffers (e.g. Broyden factors). */
  commitInto(
    pass: GPUComputePassEncoder,
    candidate: BufferRegion,
    previous: BufferRegion,
    bestA: GPUBuffer,
    bestB: GPUBuffer,
    count: number,
  ): void {
    const kernel = this.kernel('commit');
    const groups = Math.min(MAX_ELEMENT_GROUPS, Math.ceil(count / 256));
    const params = this.solveParams(`commit:${count}`, 'commit', () => ({ n: count, groups }));
    const group = kernel.bind({ ctrl: this.ctrl, params, candidate, previous, best_u: bestA, best_prev: bestB });
    kernel.dispatch(pass, group, groups);
  }

  /** Copies u0 (or zeros) into `target`. */
  encodeStart(encoder: GPUCommandEncoder, target: GPUBuffer, offset = 0): void {
    if (this.opts.u0) encoder.copyBufferToBuffer(this.opts.u0.buffer, 0, target, offset, this.n * 4);
    else encoder.clearBuffer(target, offset, this.n * 4);
  }

  /**
   * Runs the solve: `init` once, then `iterate(pass, t)` for t in [first, end), in chunks of one
   * submit each: `perSubmit` calls (default `checkEvery` iterations), or with `checkEvery: 'auto'`
   * the ChunkSchedule's lengths from there (each call runs `callIterations` iterations).
   * Iterations past convergence are skipped on the GPU.
   */
  async run(
    init: (encoder: GPUCommandEncoder) => void,
    iterate: (pass: GPUComputePassEncoder, t: number) => void,
    first: number,
    end: number,
    perSubmit = this.opts.checkEvery,
    callIterations = 1,
    hooks: RunHooks = {},
  ): Promise<ControlSnapshot> {
    const { engine } = this;
    // Each chunk reads the header and the first trace entry (the starting residual, which the
    // adaptive schedule measures the rate from); with `trace` the recorded entries are read once
    // at the end (a per-chunk copy of the whole trace would cost 8 bytes × maxDepth every chunk).
    const copyBytes = CONTROL_HEADER_BYTES + TRACE_ENTRY_BYTES;
    let t = first;
    const schedule = new ChunkSchedule(this.opts, perSubmit, callIterations);
    // Each chunk and its readback are one checked submit (engine.readBytes): a chunk the device
    // rejects (e.g. a wrapped buffer destroyed meanwhile) fails the solve with GpuValidationError.
    const encodeChunk = (withInit: boolean, calls: number) => (encoder: GPUCommandEncoder): void => {
      this.recordings.clear();
      if (withInit) {
        // After the start's submit (which does not read the control block), before this one's.
        engine.device.queue.writeBuffer(this.ctrl, 0, initialControl({ key: this.opts.key, inference: this.opts.inference }));
        // A kept run's result: fresh buffers that every chunk copies the best iterate into.
        if (this.keep) this.out ??= { u: engine.allocate(this.n * 4, 'Qd'), prev: engine.allocate(this.n * 4, 'Qd') };
        // A kept run's kernels read Qd from its own copy: this solve's Qd into it before any of them.
        if (this.keep) encoder.copyBufferToBuffer(this.Qd.buffer, 0, this.qdBuffer, 0, this.n * 4);
        init(encoder);
      }
      const pass = encoder.beginComputePass();
      const stop = t + calls;
      for (; t < stop; t++) iterate(pass, t);
      if (t === end && hooks.tail) hooks.tail(pass, end);
      pass.end();
      hooks.close?.(encoder);
      if (this.out) {
        encoder.copyBufferToBuffer(this.bestU, 0, this.out.u, 0, this.n * 4);
        encoder.copyBufferToBuffer(this.bestPrev, 0, this.out.prev, 0, this.n * 4);
      }
    };
    const inFlight: Promise<ControlSnapshot>[] = [];
    const submitChunk = (withInit: boolean): Promise<ControlSnapshot> => {
      const calls = Math.min(end - t, schedule.next());
      // The chunk before this one, if still in flight: the GPU starts this one when that one ends.
      const timing = this.pace.chunk(calls, inFlight[inFlight.length - 1]);
      const start = withInit ? this.startOf(hooks.start) : undefined;
      return engine.readBytes(this.ctrl, copyBytes, { encode: encodeChunk(withInit, calls), what: this.solver, start, settle: timing.settle }).then((bytes) => {
        const snapshot = decodeControl(bytes);
        timing.back(snapshot.done);
        return snapshot;
      });
    };
    // Each chunk's promise is marked handled as it is made: the one awaited reports its failure,
    // and a second chunk submitted ahead that fails too (the same encoding error, say) must not
    // reach Node as an unhandled rejection while the first is awaited (which ends the process
    // under Node's default --unhandled-rejections=throw).
    const submit = (withInit: boolean): void => {
      const chunk = submitChunk(withInit);
      chunk.catch(() => undefined);
      inFlight.push(chunk);
    };
    let snapshot: ControlSnapshot | undefined;
    const deadline = performance.now() + this.opts.timeoutMs;
    this.pace.begin();
    try {
      submit(true);
      if (t < end && this.opts.overlap) submit(false);
      while (inFlight.length > 0) {
        snapshot = await this.beforeDeadline(inFlight.shift() as Promise<ControlSnapshot>, deadline);
        if (snapshot.done) break;
        schedule.observe(snapshot, t);
        if (t < end) submit(false);
      }
      if (this.opts.trace && snapshot) {
        // Chunks still in flight are skipped on the GPU: the trace no longer changes.
        const bytes = CONTROL_HEADER_BYTES + Math.min(snapshot.ntrace, traceEntries(this.opts)) * TRACE_ENTRY_BYTES;
        snapshot = decodeControl(await engine.readBytes(this.ctrl, bytes), true);
      }
    } catch (err) {
      if (this.out) {
        for (const buffer of [this.out.u, this.out.prev]) engine.releaseBuffer(buffer);
        this.out = undefined;
      }
      // A lost device shows up as a failed readback, or as device.lost settling a moment later;
      // report it under the solver's name. Other typed errors pass through at once.
      if (err instanceof AnchoraxError && !(err instanceof DeviceLostError)) throw err;
      await engine.assertAliveAfterFailure(this.solver);
      throw err;
    } finally {
      // A chunk submitted ahead may still be in flight: its kernels are no-ops now (or the device
      // is gone), and its readback returns its staging buffer to the pool by itself. Its failure,
      // if any, is already reported by the one awaited above (each is marked handled by submit).
      // It is not waited for (that costs up to a chunk's latency per solve): a process that exits
      // meanwhile is safe because the engine destroys its device at exit (see destroyAtExit in
      // engine.ts).
      this.pace.end();
      if (!this.keep) this.unpinAll();
    }
    engine.assertAlive(this.solver);
    return snapshot as ControlSnapshot;
  }

  /**
   * `pending`, unless `deadline` (performance.now() time) passes first: then TimeoutError, and
   * the engine is given up, since the GPU work still running cannot be cancelled.
   */
  private beforeDeadline<T>(pending: Promise<T>, deadline: number): Promise<T> {
    if (deadline === Infinity) return pending;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const ms = this.opts.timeoutMs;
        this.engine.abandon(`a ${this.solver} solve ran past options.timeoutMs = ${ms} ms, and GPU work cannot be cancelled`);
        reject(new TimeoutError('options.timeoutMs', `the ${this.solver} solve did not finish within ${ms} ms (a layer that never returns?); the engine is unusable now`));
      }, Math.max(0, deadline - performance.now()));
    });
    return Promise.race([pending, expired]).finally(() => clearTimeout(timer));
  }

  /**
   * Hands the best iterate out as tensors and returns the scratch buffers to the pool; a kept
   * run hands out the copies its chunks made (see out) and keeps its buffers.
   */
  result(snapshot: ControlSnapshot, B?: BroydenFactors): SolveResult {
    const shape = this.Qd.shape;
    let uStar: Tensor;
    let uPrev: Tensor;
    if (this.keep && this.out) {
      uStar = new Tensor(this.engine, this.out.u, shape, true);
      uPrev = new Tensor(this.engine, this.out.prev, shape, true);
      this.out = undefined;
    } else {
      uStar = new Tensor(this.engine, this.bestU, shape, true);
      uPrev = new Tensor(this.engine, this.bestPrev, shape, true);
      for (const buffer of this.scratch) this.engine.releaseBuffer(buffer);
      this.scratch.length = 0;
      this.unpinAll();
    }
    const converged = snapshot.converged && !snapshot.nonFinite;
    const status: SolveStatus = snapshot.nonFinite ? 'nonFinite' : converged ? 'converged' : snapshot.stalled ? 'stalled' : 'maxDepth';
    const stats: SolveStats = {
      status,
      nstep: snapshot.nstep,
      absResidual: snapshot.bestAbs,
      relResidual: snapshot.bestRel,
      converged,
      nonFinite: snapshot.nonFinite,
    };
    if (snapshot.trace) stats.trace = snapshot.trace;
    return {
      uStar,
      uPrev,
      tnstep: snapshot.tnstep,
      stats,
      B,
      dispose() {
        uStar.dispose();
        uPrev.dispose();
        B?.Us.dispose();
        B?.VTs.dispose();
      },
    };
  }
}
