/**
 * Stages: the pieces `sequential(...)` chains into an implicit layer. A stage maps rows of
 * `inputSize` floats to rows of `outputSize` floats (`[batch, inputSize] → [batch, outputSize]`),
 * may read the injected input Qd, and has forward and adjoint kernels that encode into a pass the
 * caller owns, like an {@link ImplicitLayer}'s.
 *
 * A `Stage` is a description (kind, parameters, sizes it fixes); `sequential` instantiates it for
 * the row size it meets there (`instantiate`), which compiles nothing until `prepare`.
 */
import type { Engine } from '../engine';
import type { BufferRegion } from '../gpu/kernel';
import type { Tensor } from '../tensor';
import type { Epilogue, EpilogueOp, ForwardKernelChoice } from './dense';
import type { FusedConv, FusedNorm, FusedPicardPath } from './layer';

/** Buffers of one stage evaluation `output = stage(input)` (all `[batch, size]`, row-major). */
export interface StageForwardIO {
  input: BufferRegion;
  output: BufferRegion;
  /** The layer's injected input Qd, `[batch, featureSize]`. */
  Qd: BufferRegion;
  /** The evaluation gate (see ForwardIO.gate): every kernel returns at once when word 0 is set. */
  gate: GPUBuffer;
}

/** Where a stage's adjoint writes ∂Qd: overwritten, or added to what earlier stages wrote. */
export interface QdGradient {
  region: BufferRegion;
  accumulate: boolean;
}

/** Buffers of one stage vector-Jacobian product; each output is optional. */
export interface StageAdjointIO {
  /** The point of linearisation (stages recompute what they need of their output from it). */
  input: BufferRegion;
  Qd: BufferRegion;
  /** ȳ, the cotangent of the output. */
  gradOutput: BufferRegion;
  /** x̄ = Jᵀȳ, overwritten. */
  gradInput?: BufferRegion;
  /** ∂Qd, for stages that read Qd. */
  gradQd?: QdGradient;
  /** ∂params by the stage's own parameter names, overwritten. */
  gradParams?: Readonly<Record<string, GPUBuffer>>;
  /** Added to x̄; given only to kernels that say `addsInput`. */
  gradInputAdd?: BufferRegion;
  gate: GPUBuffer;
}

/** A stage bound to an engine and an input row size: what `sequential` encodes. */
export interface StageKernels {
  readonly outputSize: number;
  /** Compiles kernels and allocates scratch for `batch` rows; throws LimitError when they do not fit. */
  prepare(batch: number): Promise<void>;
  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void;
  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void;
  /** Gives back the scratch buffers `prepare` allocated (when it allocates any). */
  dispose?(): void;
  /** @internal Whether the adjoint takes `gradInputAdd` (adds it to x̄ in its own epilogue). */
  readonly addsInput?: boolean;
  /** @internal The fused Picard path, when these kernels are the whole layer and offer one. */
  fusedPicard?(batch: number): FusedPicardPath | null;
  /**
   * @internal The same path for these kernels as the last group of a longer chain (any input
   * size, never the whole-iteration kernel); the chain adds its `prefix`.
   */
  fusedTail?(batch: number): FusedPicardPath | null;
  /** @internal A normalisation's parts, for a solver that computes its input on the fly or takes its step in it (FusedPrefix.head, FusedStageTail). */
  fusedNorm?(batch: number): FusedNorm | null;
  /** @internal A convolution's parts, for a solver that takes its step in it (FusedStageTail). */
  fusedConv?(): FusedConv | null;
}

/** @internal What an elementwise stage is in a fused epilogue: its op, and its dropout params. */
export interface EpilogueLink {
  op: EpilogueOp;
  /** The dropout members of the kernels' params (lib/dropout.wgsl), for a dropout stage. */
  dropout?: Readonly<Record<string, number>>;
}

/**
 * One step of a {@link sequential} layer. Built-ins: `linear`, `conv2d`, `layerNorm`,
 * `groupNorm`, `tanh`, `relu`, `gelu`, `add(Qd)`, `dropout`.
 */
export interface Stage {
  /** What the stage computes, e.g. `'conv2d'` (used in error messages and parameter names). */
  readonly kind: string;
  /** Trainable parameters by name (a sequential layer exposes them as `"<index>.<name>"`). */
  readonly params: Readonly<Record<string, Tensor>>;
  /** The engine of the parameters; undefined for a stage without parameters. */
  readonly engine?: Engine;
  /** The input row size the stage requires, when it fixes one (elementwise stages take any). */
  readonly inputSize?: number;
  /** Whether the stage reads the injected input Qd (its row size must then be the layer's). */
  readonly readsQd: boolean;
  /**
   * @internal Binds the stage, at position `index` of a sequential layer, to `engine` for input
   * rows of `inputSize` floats; throws ShapeError (naming `stages[index]`) when the stage cannot
   * take that size.
   */
  instantiate(engine: Engine, inputSize: number, index: number): StageKernels;
  /**
   * @internal For an elementwise stage: what it is in the epilogue of a product before it, at
   * position `index` of its layer (a sequential layer fuses it into that product's kernels).
   */
  epilogueLink?(index: number): EpilogueLink;
  /**
   * @internal For a stage whose kernel can apply the epilogue chain (linear, conv2d, the norms):
   * binds it like `instantiate`, with the elementwise stages after it fused into its kernels as
   * `epilogue` (`choice`: the forward product's, for linear).
   */
  instantiateFused?(engine: Engine, inputSize: number, index: number, epilogue: Epilogue, choice: ForwardKernelChoice): StageKernels;
  /**
   * Frees what the stage owns on the GPU (the parameters it uploaded from arrays); stages that
   * own nothing need none. Called by `Sequential.dispose()`.
   */
  dispose?(): void;
}
