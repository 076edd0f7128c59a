/**
 * What the stage implementations share: grid sizes for elementwise kernels and the vector moves
 * (copy, accumulate, zero) that glue stages together (shaders/stages/vector.wgsl).
 */
import type { Engine } from '../../engine';
import type { BufferRegion, Kernel } from '../../gpu/kernel';
import { SHADERS } from '../../gpu/shaders';

/** Workgroups of a 256-thread grid-stride kernel over n elements (shaders/lib/grid.wgsl). */
export function gridGroups(engine: Engine, n: number): number {
  return Math.max(1, Math.min(Math.ceil(n / 256), engine.device.limits.maxComputeWorkgroupsPerDimension));
}

/** Copies, accumulations and zero fills between stage buffers, all gated. */
export class VectorOps {
  private constructor(
    private readonly engine: Engine,
    private readonly copyKernel: Kernel,
    private readonly zeroKernel: Kernel,
  ) {}

  static async create(engine: Engine): Promise<VectorOps> {
    const [copy, zero] = await Promise.all([
      engine.kernel('stageCopy', SHADERS.stageVector, 'copy_main'),
      engine.kernel('stageZero', SHADERS.stageVector, 'zero_main'),
    ]);
    return new VectorOps(engine, copy, zero);
  }

  /** dst = src (or dst += src with `accumulate`) over n floats. */
  copy(pass: GPUComputePassEncoder, gate: GPUBuffer, src: BufferRegion, dst: BufferRegion, n: number, accumulate: boolean): void {
    const kernel = this.copyKernel;
    const params = this.engine.params(kernel, { n, accumulate: accumulate ? 1 : 0 });
    kernel.dispatch(pass, kernel.bind({ gate, params, src, dst }), gridGroups(this.engine, n));
  }

  /** dst = 0 over n floats. */
  zero(pass: GPUComputePassEncoder, gate: GPUBuffer, dst: BufferRegion, n: number): void {
    const kernel = this.zeroKernel;
    const params = this.engine.params(kernel, { n, accumulate: 0 });
    kernel.dispatch(pass, kernel.bind({ gate, params, zero: dst }), gridGroups(this.engine, n));
  }
}
