/**
 * What the stage implementations share: grid sizes for elementwise kernels and the vector moves
 * (copy, accumulate, zero) that glue stages together (shaders/stages/vector.wgsl).
 */
import type { Engine } from '../../engine';
import type { BufferRegion } from '../../gpu/kernel';
import { KernelSet, type KernelSpec } from '../../gpu/kernel-set';

/** Workgroups of a 256-thread grid-stride kernel over n elements (shaders/lib/grid.wgsl). */
export function gridGroups(engine: Engine, n: number): number {
  return Math.max(1, Math.min(Math.ceil(n / 256), engine.device.limits.maxComputeWorkgroupsPerDimension));
}

/** The problem of a grid-stride elementwise kernel: n values, and the device's dimension limit. */
export interface GridProblem {
  n: number;
  limit: number;
}

/** A grid-stride kernel's spec: `entry` of `shader`, grid_groups(n) workgroups. */
export function gridKernel(shader: KernelSpec<GridProblem>['shader'], entry: string): KernelSpec<GridProblem> {
  return { shader, entry, groups: (p) => [Math.max(1, Math.min(Math.ceil(p.n / 256), p.limit))] };
}

/** The problem of n values on `engine`. */
export function gridProblem(engine: Engine, n: number): GridProblem {
  return { n, limit: engine.device.limits.maxComputeWorkgroupsPerDimension };
}

const VECTOR_SPECS = {
  copy: gridKernel('stageVector', 'copy_main'),
  zero: gridKernel('stageVector', 'zero_main'),
};

/** Copies, accumulations and zero fills between stage buffers, all gated. */
export class VectorOps {
  private constructor(
    private readonly engine: Engine,
    private readonly set: KernelSet<GridProblem, keyof typeof VECTOR_SPECS>,
  ) {}

  static async create(engine: Engine): Promise<VectorOps> {
    const set = new KernelSet(engine, 'vector ops', VECTOR_SPECS);
    await set.prepare();
    return new VectorOps(engine, set);
  }

  /** dst = src (or dst += src with `accumulate`) over n floats. */
  copy(pass: GPUComputePassEncoder, gate: GPUBuffer, src: BufferRegion, dst: BufferRegion, n: number, accumulate: boolean): void {
    this.set.dispatch(pass, 'copy', gridProblem(this.engine, n), { gate, src, dst }, { n, accumulate: accumulate ? 1 : 0 });
  }

  /** dst = 0 over n floats. */
  zero(pass: GPUComputePassEncoder, gate: GPUBuffer, dst: BufferRegion, n: number): void {
    this.set.dispatch(pass, 'zero', gridProblem(this.engine, n), { gate, zero: dst }, { n, accumulate: 0 });
  }
}
