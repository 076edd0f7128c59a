/**
 * `add(Qd)`: the residual sum with the layer's injected input, `y = x + Qd`
 * (shaders/stages/add_qd.wgsl; its adjoint is two copies).
 */
import type { Engine } from '../../engine';
import { OptionError } from '../../errors';
import { KernelSet } from '../../gpu/kernel-set';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { VectorOps, gridKernel, gridProblem, type GridProblem } from './common';

/** Names the injected input in `add(Qd)`. */
export const Qd = 'Qd';

const SPECS = { sum: gridKernel('stageAddQd', 'main') };

class AddQdKernels implements StageKernels {
  private readonly set: KernelSet<GridProblem, keyof typeof SPECS>;
  private vector?: VectorOps;
  constructor(
    private readonly engine: Engine,
    readonly outputSize: number,
  ) {
    this.set = new KernelSet(engine, 'add(Qd) stage', SPECS);
  }

  async prepare(): Promise<void> {
    await this.set.prepare();
    this.vector ??= await VectorOps.create(this.engine);
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    this.set.use();
    const n = batch * this.outputSize;
    this.set.dispatch(pass, 'sum', gridProblem(this.engine, n), { gate: io.gate, x: io.input, qd: io.Qd, y: io.output }, { n });
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    this.set.use();
    const vector = this.vector as VectorOps;
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
