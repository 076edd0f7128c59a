/**
 * The extension point: solvers and backprop wrappers see a layer only through this interface,
 * never the tanh block specifically.
 */
import type { FusedProduct } from './dense';
import type { Engine } from '../engine';
import type { BufferRegion } from '../gpu/kernel';
import type { Tensor } from '../tensor';

/** Buffers of one evaluation `output = f(input, Qd)`. */
export interface ForwardIO {
  /** The state u: `batch × featureSize` floats (a region of a larger buffer is allowed). */
  input: BufferRegion;
  /** Where f(u, Qd) goes; same size as input. */
  output: BufferRegion;
  /** The injected input Qd, same size as input. */
  Qd: BufferRegion;
  /**
   * Evaluation gate: a u32 storage buffer (at least 16 bytes) of words the GPU fills in, since a
   * solver encodes iterations ahead of knowing which of them will run (shaders/lib/gate.wgsl):
   * - word 0: when non-zero the layer's kernels must do nothing (the solver has finished and
   *   iterations encoded ahead are being skipped);
   * - word 1: the evaluation index, the number of evaluations of f performed before this one in
   *   the solve (0, 1, 2, … over every evaluation, Anderson's and the line search's included);
   * - word 2: the solve's `key` option;
   * - word 3: 1 in training mode, 0 with `inference: true`.
   *
   * A stochastic layer derives its noise from (word 2, word 1) and draws none when word 3 is 0.
   * Inside a solve this is the solve's control block; outside one, `engine.openGate()` is all
   * zeros (open, inference mode), and a caller that wants training-mode noise of evaluation k
   * writes `[0, k, key, 1]` into a storage buffer of its own.
   */
  gate: GPUBuffer;
}

/**
 * Buffers of one vector-Jacobian product of f at (input, Qd) with cotangent `gradOutput`.
 * Each output is optional: a layer computes only what it is given a buffer for.
 */
export interface AdjointIO {
  /** The point u of linearisation. */
  input: BufferRegion;
  Qd: BufferRegion;
  /** ḡ, the cotangent of f's output. */
  gradOutput: BufferRegion;
  /** ∂u = J_uᵀ ḡ (what the IFT adjoint solve needs). */
  gradInput?: BufferRegion;
  /** Added to ∂u when given (the IFT system λ ↦ J_fᵀλ + ḡ uses it). */
  gradInputAdd?: BufferRegion;
  /** ∂Qd. */
  gradQd?: BufferRegion;
  /** ∂params, by the names of `params`, each the size of its parameter. */
  gradParams?: Readonly<Record<string, GPUBuffer>>;
  /**
   * Evaluation gate, as in ForwardIO: pass the gate of the forward evaluation being
   * differentiated, so that a stochastic layer applies the same noise (e.g. dropout mask).
   * JFB, GDEQ and IFT differentiate the inference-mode recomputation and pass
   * `engine.openGate()` (no noise).
   */
  gate: GPUBuffer;
}

/**
 * A fused fast path a layer may offer to the Picard solver: its f as parts the solver composes
 * its own kernels from. The library knows one kind, a dense layer with a deterministic fused
 * epilogue, `epilogue(u @ weight + bias)` (the tanh block's epilogue is add(Qd) → tanh); a layer
 * must offer it only when that is exactly its f. The solver then runs whole iterations per
 * dispatch in one workgroup when the state is small (shaders/picard_fused.wgsl), else one
 * dispatch per iteration: the product with the iteration's bookkeeping in its prologue and
 * epilogue (shaders/picard_dense_step.wgsl).
 */
export interface FusedPicardPath {
  kind: 'dense';
  /** Weight [d, d], row-major. */
  weight: GPUBuffer;
  /** Bias [d]. */
  bias: GPUBuffer;
  /** @internal The epilogue chain's override constants (lib/epilogue.wgsl). */
  constants: Readonly<Record<string, number>>;
  /** @internal Whether the state fits the whole-iteration kernel (shaders/picard_fused.wgsl). */
  wholeState: boolean;
  /**
   * @internal The dense-product library's kernel for this batch (lib/gemm_rows.wgsl,
   * lib/gemm_tiled.wgsl, or split-k's first pass, lib/gemm_split.wgsl), or null for none.
   */
  product: FusedProduct | null;
  /**
   * @internal The layer's kernels before the product, when f is more than the product and its
   * epilogue (a sequential of several groups ending in a fused linear): f(u) =
   * epilogue(prefix(u) @ weight + bias), so the solver runs the prefix, then the product with the
   * iteration's bookkeeping around it (one dispatch fewer than the layer and a step kernel).
   */
  prefix?: FusedPrefix;
}

/** @internal The kernels of f before its fused product (see FusedPicardPath.prefix). */
export interface FusedPrefix {
  /** Encodes them, the state `io.input` to `output` (honouring the gate as every layer kernel does). */
  encode(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void;
  /** Their output [batch, size]: the product's left operand (the layer's own scratch). */
  output: GPUBuffer;
  /** Its row size: the product's inner dimension. */
  size: number;
  /**
   * The first of those kernels when a solver can compute its input on the fly (Broyden's
   * advance): a fused linear of the state (weight [d, h]; shaders/broyden_prefix_head.wgsl), a
   * normalisation with its chain (shaders/broyden_prefix_norm_head.wgsl), or a run of
   * elementwise stages (shaders/broyden_advance.wgsl's head_main).
   */
  head?: PrefixHead;
}

/**
 * @internal A layer whose f ends in a library stage kernel with its deterministic chain (a
 * sequential whose last group is a group or layer normalisation, f(u) = chain(norm(prefix(u))),
 * or a 3×3 convolution): the solver runs the prefix, then that kernel with the iteration's
 * bookkeeping around it (shaders/picard_norm_step.wgsl, picard_conv_step.wgsl, …).
 */
export type FusedStageTail = ({ kind: 'norm'; norm: FusedNorm } | { kind: 'conv'; conv: FusedConv }) & {
  /** The kernels before it; absent when it is the whole layer (its input is the state). */
  prefix?: FusedPrefix;
};

/** @internal The parts of a 3×3 convolution with its deterministic chain (lib/conv3x3.wgsl). */
export interface FusedConv {
  weight: GPUBuffer;
  bias: GPUBuffer;
  /** The chain's override constants (lib/epilogue.wgsl). */
  constants: Readonly<Record<string, number>>;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
}

/** @internal The parts of a group or layer normalisation with its deterministic chain (lib/norm_groups.wgsl). */
export interface FusedNorm {
  gamma: GPUBuffer;
  beta: GPUBuffer;
  /** The chain's override constants (lib/epilogue.wgsl). */
  constants: Readonly<Record<string, number>>;
  /** lib/norm_groups.wgsl's NormShape but its rows (the batch). */
  groups: number;
  channels: number;
  spatial: number;
  eps: number;
  /** The dispatch for the batch asked: one workgroup per (row, group), as a 2-D grid. */
  grid: [number, number];
}

/**
 * @internal The first kernel of a prefix (FusedPrefix.head): its parts, `output` [batch, size]
 * (the buffer it writes), `rest` (the kernels after it, from `io.input`, that buffer, into the
 * prefix's output).
 */
export type PrefixHead = (
  | { kind: 'dense'; path: FusedPicardPath }
  | { kind: 'norm'; norm: FusedNorm }
  /** Elementwise stages of the state: their chain's override constants (lib/epilogue.wgsl). */
  | { kind: 'pointwise'; constants: Readonly<Record<string, number>> }
) & {
  output: GPUBuffer;
  size: number;
  rest(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void;
};

/**
 * An implicit layer `u ↦ f(u, Qd)` whose fixed point the solvers find: the one interface the
 * solvers (picard, anderson, broyden), the backprop wrappers (jfb, gdeq, ift) and gradcheck use.
 * Built-in implementations: the tanh block (`implicitBlock(engine, …)`), `sequential(...stages)` and
 * `defineLayer(...)` (user WGSL). A hand-written implementation encodes its kernels into the
 * pass it is given (never submits), honours the gate (see ForwardIO.gate) in every kernel, and
 * overwrites (never accumulates into) the outputs it is given.
 */
export interface ImplicitLayer {
  readonly engine: Engine;
  /** Size of the last state dimension (d): states are `[d]` or `[batch, d]`. */
  readonly featureSize: number;
  /** The layer's trainable parameters, by name. */
  readonly params: Readonly<Record<string, Tensor>>;
  /** Compiles what the encoders need for `batch` rows; called before encoding. */
  prepare(batch: number): Promise<void>;
  /** Encodes `io.output = f(io.input, io.Qd)` for `batch` rows into a pass the caller owns. */
  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void;
  /** Encodes the vector-Jacobian product described by `io` (see AdjointIO). */
  encodeAdjoint(pass: GPUComputePassEncoder, io: AdjointIO, batch: number): void;
  /**
   * Optional fast path: the Picard solver asks for it (unless `fused: false`) and runs whole
   * iterations per dispatch when a path is returned, with the same stopping rules; null = none
   * for this batch.
   */
  fusedPicard?(batch: number): FusedPicardPath | null;
  /** @internal The fast path of a layer ending in a stage kernel (see FusedStageTail); null = none for this batch. */
  fusedStageTail?(batch: number): FusedStageTail | null;
}
