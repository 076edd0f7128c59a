/**
 * `sequential(...stages)`: an implicit layer made of stages applied in order,
 * `f(u, Qd) = s_n(… s_2(s_1(u)) …)`, where stages may read Qd (`add(Qd)`). It is an
 * ImplicitLayer like the tanh block: every solver and jfb/gdeq/ift take it.
 *
 * Fusion: a stage that takes an epilogue (linear, conv2d, the norms: `instantiateFused`) and the
 * elementwise stages right after it (add(Qd), tanh/relu/gelu, dropout; up to EPILOGUE_MAX_OPS, one
 * add(Qd) and one dropout) become one group, encoded as its kernel with those stages as its
 * epilogue (lib/epilogue.wgsl): one kernel forward, and δ, ∂weight/∂bias, ∂x in the adjoint.
 * Other stages run on their own kernels.
 *
 * Forward: each stage writes into a scratch row buffer that the next one reads (the last writes
 * the layer's output). Adjoint: the stages' inputs are recomputed into those buffers (with the
 * same gate, so a dropout stage applies the same mask), then the stages' adjoints run last to first,
 * passing ȳ between two scratch buffers; ∂Qd is summed over the stages that read Qd.
 */
import type { Engine } from '../engine';
import { DisposedError, EngineMismatchError, OptionError, ShapeError } from '../errors';
import type { BufferRegion } from '../gpu/kernel';
import type { Tensor } from '../tensor';
import type { AdjointIO, ForwardIO, ImplicitLayer } from './layer';
import type { FusedPicardPath, FusedPrefix, FusedStageTail, PrefixHead } from './layer';
import { EPILOGUE_MAX_OPS, NO_DROPOUT, chainConstants, type EpilogueOp, type ForwardKernelChoice } from './dense';
import type { EpilogueLink, QdGradient, Stage, StageKernels } from './stage';
import { checkBatch } from './stages/workgroups';
import { VectorOps } from './stages/common';
import { readBoolean, readEngine, readOptions } from '../validate';

/** Leading options of {@link sequential}, for layers whose stages fix neither size nor engine. */
export interface SequentialOptions {
  /** The state's row size d; default: the input size of the first stage that fixes one. */
  featureSize?: number;
  /** The engine; default: the engine of the stages' parameters. */
  engine?: Engine;
  /**
   * Fuse each linear, conv2d and norm stage with the elementwise stages after it into one kernel (default true).
   * `false` runs every stage on its own kernels (the same results, to float32 rounding).
   */
  fuse?: boolean;
}

/** @internal How a Sequential is built (the tanh block preset names its parameters itself). */
export interface SequentialBuild {
  fuse: boolean;
  /** The public name of stage `index`'s parameter `name` (default `"<index>.<name>"`). */
  paramName?: (index: number, name: string) => string;
  /** The forward product's choice for fused groups. */
  forwardKernel?: ForwardKernelChoice;
}

/** One encoded group: a stage, or a linear stage with the elementwise stages fused after it. */
interface Bound {
  /** The stage that owns the group's parameters (the first). */
  stage: Stage;
  /** Index of that stage in the layer. */
  index: number;
  /** The stages of the group. */
  stages: readonly Stage[];
  kernels: StageKernels;
  inputSize: number;
  readsQd: boolean;
}

/** The longest run of stages after `start` that fuse into its epilogue. */
function fusedRun(stages: readonly Stage[], start: number): EpilogueLink[] {
  const links: EpilogueLink[] = [];
  const count = (op: EpilogueOp) => links.filter((l) => l.op === op).length;
  for (let i = start + 1; i < stages.length && links.length < EPILOGUE_MAX_OPS; i++) {
    const link = stages[i].epilogueLink?.(i);
    if (!link) break;
    if ((link.op === 'add-qd' || link.op === 'dropout') && count(link.op) > 0) break;
    links.push(link);
  }
  return links;
}

/** Per-batch scratch: the inner activations x_1 … x_{n−1}, and two ȳ buffers for the backward sweep. */
interface Scratch {
  activations: GPUBuffer[];
  gradients: [GPUBuffer, GPUBuffer];
}

function isStage(value: unknown): value is Stage {
  return typeof value === 'object' && value !== null && typeof (value as Stage).instantiate === 'function';
}

/** A chain of stages as an {@link ImplicitLayer}; build it with {@link sequential}. */
export class Sequential implements ImplicitLayer {
  readonly featureSize: number;
  /** Every stage's parameters, named `"<stage index>.<name>"` (e.g. `"0.weight"`). */
  readonly params: Readonly<Record<string, Tensor>>;
  readonly stages: readonly Stage[];
  private readonly bound: Bound[];
  private vector?: VectorOps;
  private readonly scratch = new Map<number, Scratch>();
  private readonly paramNames = new Map<number, (index: number, name: string) => string>();
  private isDisposed = false;

  /** @internal Use {@link sequential}. */
  constructor(
    readonly engine: Engine,
    featureSize: number,
    stages: readonly Stage[],
    build: SequentialBuild = { fuse: true },
  ) {
    this.featureSize = featureSize;
    this.stages = Object.freeze([...stages]);
    const params: Record<string, Tensor> = {};
    const paramName = build.paramName ?? ((index: number, name: string) => `${index}.${name}`);
    this.bound = [];
    let size = featureSize;
    for (let index = 0; index < stages.length; index++) {
      const stage = stages[index];
      const argument = `stages[${index}]`;
      if (stage.inputSize !== undefined && stage.inputSize !== size) {
        throw new ShapeError(argument, `${stage.kind} takes rows of ${stage.inputSize} values but gets rows of ${size}`);
      }
      if (stage.readsQd && size !== featureSize) {
        throw new ShapeError(argument, `${stage.kind} reads Qd (rows of ${featureSize}) but gets rows of ${size}`);
      }
      const links = build.fuse && stage.instantiateFused ? fusedRun(stages, index) : [];
      const group = stages.slice(index, index + 1 + links.length);
      const kernels = stage.instantiateFused && links.length > 0
        ? stage.instantiateFused(engine, size, index, {
          ops: links.map((l) => l.op),
          dropout: links.find((l) => l.dropout)?.dropout ?? NO_DROPOUT,
        }, build.forwardKernel ?? 'auto')
        : stage.instantiate(engine, size, index);
      group.slice(1).forEach((fused, k) => {
        if (fused.readsQd && kernels.outputSize !== featureSize) {
          throw new ShapeError(`stages[${index + 1 + k}]`, `${fused.kind} reads Qd (rows of ${featureSize}) but gets rows of ${kernels.outputSize}`);
        }
      });
      this.bound.push({ stage, index, stages: group, kernels, inputSize: size, readsQd: group.some((g) => g.readsQd) });
      for (const [name, tensor] of Object.entries(stage.params)) params[paramName(index, name)] = tensor;
      this.paramNames.set(index, paramName);
      size = kernels.outputSize;
      index += links.length;
    }
    if (size !== featureSize) {
      throw new ShapeError('stages', `the last stage gives rows of ${size} values; an implicit layer must map the state (rows of ${featureSize}) to its own size`);
    }
    this.params = Object.freeze(params);
  }

  /** The number of kernel groups f is encoded as (a fused linear → elementwise run counts one). */
  get groups(): number {
    return this.bound.length;
  }

  async prepare(batch: number): Promise<void> {
    this.assertLive();
    checkBatch(batch);
    this.vector ??= await VectorOps.create(this.engine);
    for (const { kernels } of this.bound) await kernels.prepare(batch);
    this.assertLive();
    if (this.scratch.has(batch)) return;
    // The last stage writes the layer's output; only the others need a buffer of their own.
    const rowBytes = this.bound.slice(0, -1).map((b) => b.kernels.outputSize * batch * 4);
    const largest = Math.max(...rowBytes, this.featureSize * batch * 4);
    this.engine.assertFits(largest, 'Qd');
    this.scratch.set(batch, {
      activations: rowBytes.map((bytes) => this.engine.allocate(bytes, 'Qd')),
      gradients: [this.engine.allocate(largest, 'Qd'), this.engine.allocate(largest, 'Qd')],
    });
  }

  private prepared(batch: number): { scratch: Scratch; vector: VectorOps } {
    this.assertLive();
    const scratch = this.scratch.get(batch);
    if (!scratch || !this.vector) throw new Error(`sequential: prepare(${batch}) must run before encoding`);
    return { scratch, vector: this.vector };
  }

  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void {
    this.encodeGroups(pass, io, batch, this.bound.length);
  }

  /** Encodes the first `count` groups: io.input → … → io.output (the inner ones through the scratch). */
  /** Groups [from, count): the first from `io.input`, the last into `io.output`. */
  private encodeGroups(pass: GPUComputePassEncoder, io: ForwardIO, batch: number, count: number, from = 0): void {
    const { activations } = this.prepared(batch).scratch;
    for (let i = from; i < count; i++) {
      const input = i === from ? io.input : activations[i - 1];
      const output = i === count - 1 ? io.output : activations[i];
      this.bound[i].kernels.encodeForward(pass, { input, output, Qd: io.Qd, gate: io.gate }, batch);
    }
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: AdjointIO, batch: number): void {
    const { scratch, vector } = this.prepared(batch);
    const { activations, gradients } = scratch;
    const inputOf = (i: number): BufferRegion => (i === 0 ? io.input : activations[i - 1]);
    // Each stage's adjoint needs its input: recompute the inner activations (not the last output).
    const inner = this.bound.length - 1;
    if (inner > 0) this.encodeGroups(pass, { input: io.input, output: activations[inner - 1], Qd: io.Qd, gate: io.gate }, batch, inner);
    let gradOutput: BufferRegion = io.gradOutput;
    let qdWritten = false;
    let inputAdded = false;
    for (let i = this.bound.length - 1; i >= 0; i--) {
      const { stage, index, kernels, readsQd } = this.bound[i];
      const gradInput = i === 0 ? io.gradInput : gradients[i % 2];
      const gradParams: Record<string, GPUBuffer> = {};
      const paramName = this.paramNames.get(index) as (index: number, name: string) => string;
      for (const name of Object.keys(stage.params)) {
        const buffer = io.gradParams?.[paramName(index, name)];
        if (buffer) gradParams[name] = buffer;
      }
      const gradQd: QdGradient | undefined = io.gradQd && readsQd ? { region: io.gradQd, accumulate: qdWritten } : undefined;
      // The first group adds gradInputAdd in its own epilogue when it can (the IFT system).
      const gradInputAdd = i === 0 && kernels.addsInput && io.gradInput ? io.gradInputAdd : undefined;
      kernels.encodeAdjoint(pass, { input: inputOf(i), Qd: io.Qd, gradOutput, gradInput, gradQd, gradParams, gradInputAdd, gate: io.gate }, batch);
      inputAdded ||= gradInputAdd !== undefined;
      qdWritten ||= gradQd !== undefined;
      if (gradInput) gradOutput = gradInput;
    }
    const n = batch * this.featureSize;
    if (io.gradQd && !qdWritten) vector.zero(pass, io.gate, io.gradQd, n);
    if (io.gradInput && io.gradInputAdd && !inputAdded) vector.copy(pass, io.gate, io.gradInputAdd, io.gradInput, n, true);
  }

  /**
   * @internal The fused Picard path (shaders/picard_fused.wgsl), offered when the whole layer is
   * one fused group that offers it (a deterministic linear → elementwise chain, small state).
   */
  fusedPicard(batch: number): FusedPicardPath | null {
    this.assertLive();
    if (this.bound.length === 1) return this.bound[0].kernels.fusedPicard?.(batch) ?? null;
    // Several groups: the last, a fused linear, takes the iteration's bookkeeping; the groups
    // before it are the prefix. Only for a deterministic chain (noise is drawn per evaluation).
    const tail = this.bound[this.bound.length - 1];
    if (this.stages.some((stage) => stage.kind === 'dropout') || !this.scratch.has(batch)) return null;
    const path = tail.kernels.fusedTail?.(batch) ?? null;
    if (!path) return null;
    return { ...path, prefix: this.prefix(batch, this.bound.length - 1) };
  }

  /**
   * @internal The path of a layer ending in a stage kernel (ImplicitLayer.fusedStageTail): when the
   * last group is a group or layer normalisation or a convolution (with its chain), its parts and
   * the groups before it as the prefix. Only for a deterministic chain.
   */
  fusedStageTail(batch: number): FusedStageTail | null {
    this.assertLive();
    if (this.stages.some((stage) => stage.kind === 'dropout') || !this.scratch.has(batch)) return null;
    const inner = this.bound.length - 1;
    const last = this.bound[inner].kernels;
    const norm = last.fusedNorm?.(batch) ?? null;
    const conv = norm ? null : last.fusedConv?.() ?? null;
    const prefix = inner === 0 ? {} : { prefix: this.prefix(batch, inner) };
    return norm ? { kind: 'norm', norm, ...prefix } : conv ? { kind: 'conv', conv, ...prefix } : null;
  }

  /**
   * Groups [0, inner) as a prefix: the state into their own scratch, the input of group `inner`;
   * with its head when the first group is a fused linear or a normalisation (or the first groups
   * elementwise stages): its parts, and the groups after it.
   */
  private prefix(batch: number, inner: number): FusedPrefix {
    const { activations } = this.prepared(batch).scratch;
    const output = activations[inner - 1];
    const firstKernels = this.bound[0].kernels;
    const first = firstKernels.fusedTail?.(batch) ?? null;
    const norm = first ? null : firstKernels.fusedNorm?.(batch) ?? null;
    const ops = first || norm ? [] : this.leadingPointwise(inner);
    const headOf = (groups: number) => ({
      output: activations[groups - 1],
      size: this.bound[groups].inputSize,
      rest: (pass: GPUComputePassEncoder, io: ForwardIO, rows: number) => this.encodeGroups(pass, { ...io, output }, rows, inner, groups),
    });
    const head: PrefixHead | null = first
      ? { kind: 'dense', path: first, ...headOf(1) }
      : norm
        ? { kind: 'norm', norm, ...headOf(1) }
        : ops.length > 0
          ? { kind: 'pointwise', constants: chainConstants({ ops, dropout: NO_DROPOUT }), ...headOf(ops.length) }
          : null;
    return {
      output,
      size: this.bound[inner].inputSize,
      encode: (pass, io, rows) => this.encodeGroups(pass, { ...io, output }, rows, inner),
      ...(head ? { head } : {}),
    };
  }

  /**
   * The ops of the leading groups (of the first `count`) that are single elementwise stages, as
   * one epilogue chain (up to EPILOGUE_MAX_OPS, one add(Qd), no dropout).
   */
  private leadingPointwise(count: number): EpilogueOp[] {
    const ops: EpilogueOp[] = [];
    for (let i = 0; i < count && ops.length < EPILOGUE_MAX_OPS; i++) {
      const { stages, index } = this.bound[i];
      const link = stages.length === 1 && !stages[0].instantiateFused ? stages[0].epilogueLink?.(index) : undefined;
      if (!link || link.op === 'dropout' || (link.op === 'add-qd' && ops.includes('add-qd'))) break;
      ops.push(link.op);
    }
    return ops;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * Frees the layer's GPU memory: its scratch buffers and its stages' (each stage's `dispose`,
   * which frees the parameters it uploaded from arrays; tensors passed in stay the caller's, and
   * a stage shared with another layer is disposed too). Using the layer afterwards throws
   * DisposedError (`'f'`). Safe to call twice.
   */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    // Cached solve programs of this layer let go of their buffers (src/solvers/program.ts).
    this.engine.released(this);
    for (const { activations, gradients } of this.scratch.values()) {
      for (const buffer of [...activations, ...gradients]) this.engine.releaseBuffer(buffer);
    }
    this.scratch.clear();
    for (const { stages, kernels } of this.bound) {
      kernels.dispose?.();
      for (const stage of stages) stage.dispose?.();
    }
  }

  private assertLive(): void {
    if (this.isDisposed) throw new DisposedError('f', 'the sequential layer was disposed');
  }
}

/**
 * Chains stages into an implicit layer `f(u, Qd) = s_n(… s_1(u) …)`, e.g. an MDEQ-style cell
 * `sequential(conv2d(engine, …), add(Qd), groupNorm(engine, …), relu())`. The state's row size d
 * is the first stage's input size (or `options.featureSize`), and the last stage must give rows
 * of d again. Parameters are exposed (and their gradients returned) as `"<index>.<name>"`.
 * Optional leading {@link SequentialOptions} give d and the engine when no stage fixes them
 * (e.g. `sequential({ engine, featureSize: 8 }, add(Qd), tanh())`).
 *
 * @throws OptionError (`'stages'`: none given, or no engine/size can be found; `'stages[i]'`: not a
 * stage), EngineMismatchError (`'stages[i]'`: parameters on another engine), ShapeError
 * (`'stages[i]'`: a stage cannot take the rows it gets; `'stages'`: the last stage does not give
 * rows of d; `'options.featureSize'`), DeviceLostError.
 */
export function sequential(...args: (Stage | SequentialOptions)[]): Sequential {
  const first = args[0];
  const options: SequentialOptions = first !== undefined && !isStage(first) ? first : {};
  const stages = isStage(first) ? args : args.slice(1);
  const o = readOptions(options ?? null, 'options', ['featureSize', 'engine', 'fuse']);
  const fuse = readBoolean(o.fuse, 'options.fuse', true);
  if (o.engine !== undefined) readEngine(o.engine, 'options.engine', 'sequential');
  if (stages.length === 0) throw new OptionError('stages', 'sequential() needs at least one stage');
  stages.forEach((stage, i) => {
    if (!isStage(stage)) throw new OptionError(`stages[${i}]`, 'is not a stage (conv2d, linear, relu, add(Qd), …)');
  });
  const checked = stages as Stage[];
  let engine = options.engine;
  checked.forEach((stage, i) => {
    if (stage.engine === undefined) return;
    if (engine !== undefined && stage.engine !== engine) throw new EngineMismatchError(`stages[${i}]`, 'has parameters on another engine');
    engine ??= stage.engine;
  });
  if (engine === undefined) throw new OptionError('stages', 'no stage has parameters: pass { engine, featureSize } as the first argument');
  engine.assertAlive('sequential');
  for (const [i, stage] of checked.entries()) {
    for (const [name, tensor] of Object.entries(stage.params)) tensor.assertUsable(engine, `stages[${i}].${name}`);
  }
  const featureSize = options.featureSize ?? checked.find((s) => s.inputSize !== undefined)?.inputSize;
  if (featureSize === undefined) throw new OptionError('stages', 'no stage fixes the row size: pass { featureSize } as the first argument');
  if (!Number.isInteger(featureSize) || featureSize < 1) throw new ShapeError('options.featureSize', `must be a positive integer, got ${featureSize}`);
  return new Sequential(engine, featureSize, checked, { fuse });
}
