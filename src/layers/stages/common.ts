/**
 * What the stage implementations share: grid sizes for elementwise kernels and the vector moves
 * (copy, accumulate, zero) that glue stages together (shaders/stages/vector.wgsl).
 */
import type { Engine } from '../../engine';
import type { BufferRegion } from '../../gpu/kernel';
import { KernelSet, type KernelSpec } from '../../gpu/kernel-set';
import type { StageAdjointIO, StageForwardIO, StageKernels } from '../stage';

/** Workgroups of a 256-thread grid-stride kernel over n elements (shaders/lib/grid.wgsl). */
export function gridGroups(engine: Engine, n: number): number {
  return Math.max(1, Math.min(Math.ceil(n / 256), engine.device.limits.maxComputeWorkgroupsPerDimension));
}

/** The problem of a grid-stride elementwise kernel: n values, and the device's dimension limit. */
export interface GridProblem {
  n: number;
  limit: number;
}

/** @internal A grid-stride kernel's spec: `entry` of `shader`, grid_groups(n) workgroups. */
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

/**
 * The kernels of a pointwise stage (an activation, dropout): `forward_main` and `adjoint_main` of
 * `shader`, grid-stride over the batch's values, with the stage's own `params` values besides n.
 * `names` are the shader's input and output bindings (the adjoint's are g_out → g_in, reading the
 * input where the derivative needs it).
 */
export class PointwiseKernels implements StageKernels {
  private readonly set: KernelSet<GridProblem, 'forward' | 'adjoint'>;
  /** @internal */
  constructor(
    private readonly engine: Engine,
    what: string,
    shader: KernelSpec<GridProblem>['shader'],
    readonly outputSize: number,
    private readonly uniforms: Readonly<Record<string, number>>,
    private readonly names: { input: string; output: string },
  ) {
    this.set = new KernelSet(engine, what, { forward: gridKernel(shader, 'forward_main'), adjoint: gridKernel(shader, 'adjoint_main') });
  }

  prepare(): Promise<void> {
    return this.set.prepare();
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    this.set.use();
    const n = batch * this.outputSize;
    const bindings = { gate: io.gate, [this.names.input]: io.input, [this.names.output]: io.output };
    this.set.dispatch(pass, 'forward', gridProblem(this.engine, n), bindings, { n, ...this.uniforms });
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    if (!io.gradInput) return;
    this.set.use();
    const n = batch * this.outputSize;
    const bindings = { gate: io.gate, [this.names.input]: io.input, g_out: io.gradOutput, g_in: io.gradInput };
    this.set.dispatch(pass, 'adjoint', gridProblem(this.engine, n), bindings, { n, ...this.uniforms });
  }
}
