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

/** An implicit layer `u ↦ f(u, Qd)` whose fixed point the solvers find. */
export interface ImplicitLayer {
  readonly engine: Engine;
  /** Size of the last state dimension (d): states are `[d]` or `[batch, d]`. */
  readonly featureSize: number;
  /** The layer's trainable parameters, by name. */
  readonly params: Readonly<Record<string, Tensor>>;
  /** Compiles what `encodeForward` needs for `batch` rows; called before encoding a solve. */
  prepare(batch: number): Promise<void>;
  /** Encodes `io.output = f(io.input, io.Qd)` for `batch` rows into a pass the caller owns. */
  encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, batch: number): void;
}
