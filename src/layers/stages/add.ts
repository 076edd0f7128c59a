/**
 * `add(Qd)`: the residual sum with the layer's injected input, `y = x + Qd`
 * (shaders/stages/add_qd.wgsl; its adjoint is two copies).
 */
import type { Engine } from '../../engine';
import { OptionError } from '../../errors';
import type { Kernel } from '../../gpu/kernel';
import { SHADERS } from '../../gpu/shaders';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { VectorOps, gridGroups } from './common';

/** Names the injected input in `add(Qd)`. */
export const Qd = 'Qd';

class AddQdKernels implements StageKernels {
  private prepared?: { sum: Kernel; vector: VectorOps };
  constructor(
    private readonly engine: Engine,
    readonly outputSize: number,
  ) {}

  async prepare(): Promise<void> {
    this.prepared ??= {
      sum: await this.engine.kernel('stageAddQd', SHADERS.stageAddQd),
      vector: await VectorOps.create(this.engine),
    };
  }

  private kernels(): NonNullable<AddQdKernels['prepared']> {
    if (!this.prepared) throw new Error('add(Qd) stage: prepare() must run before encoding');
    return this.prepared;
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    const { sum } = this.kernels();
    const n = batch * this.outputSize;
    const group = sum.bind({ gate: io.gate, params: this.engine.params(sum, { n }), x: io.input, qd: io.Qd, y: io.output });
    sum.dispatch(pass, group, gridGroups(this.engine, n));
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    const { vector } = this.kernels();
    const n = batch * this.outputSize;
    if (io.gradInput) vector.copy(pass, io.gate, io.gradOutput, io.gradInput, n, false);
    if (io.gradQd) vector.copy(pass, io.gate, io.gradOutput, io.gradQd.region, n, io.gradQd.accumulate);
  }
}

/**
 * Adds the injected input: `y = x + Qd`. Where it stands in a sequential layer the row size must
 * be the layer's feature size (Qd's).
 *
 * @throws OptionError (`'source'`) for anything but `Qd`.
 */
export function add(source: typeof Qd = Qd): Stage {
  if (source !== Qd) throw new OptionError('source', `add() takes Qd (the injected input), got ${String(source)}`);
  return Object.freeze({
    kind: 'add',
    params: Object.freeze({}),
    readsQd: true,
    instantiate: (engine: Engine, inputSize: number) => new AddQdKernels(engine, inputSize),
    epilogueLink: () => ({ op: 'add-qd' as const }),
  });
}
