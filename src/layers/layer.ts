/**
 * The extension point: solvers and backprop wrappers see a layer only through this interface,
 * never the tanh block specifically.
 */
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
   * Evaluation gate: a u32 storage buffer; when word 0 is non-zero the layer's kernels must do
   * nothing (the solver has finished and iterations encoded ahead are being skipped).
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
  /** Evaluation gate, as in ForwardIO. */
  gate: GPUBuffer;
}

/** An implicit layer `u ↦ f(u, Qd)` whose fixed point the solvers find. */
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
}
