/**
 * Elementwise activation stages: `tanh()`, `relu()`, `gelu()` (shaders/stages/elementwise.wgsl).
 * They take rows of any size and keep it.
 */
import type { Engine } from '../../engine';
import { KernelSet } from '../../gpu/kernel-set';
import { wgslConstant } from '../../gpu/shaders';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { gridKernel, gridProblem, type GridProblem } from './common';

/** @internal The op codes of the activations, reflected from the `OP_*` constants of shaders/lib/activations.wgsl (which stages/elementwise.wgsl includes). */
export const OPS = {
  tanh: wgslConstant('stageElementwise', 'OP_TANH', 'u32'),
  relu: wgslConstant('stageElementwise', 'OP_RELU', 'u32'),
  gelu: wgslConstant('stageElementwise', 'OP_GELU', 'u32'),
} as const;

type Activation = keyof typeof OPS;

const SPECS = {
  forward: gridKernel('stageElementwise', 'forward_main'),
  adjoint: gridKernel('stageElementwise', 'adjoint_main'),
};

class ElementwiseKernels implements StageKernels {
  private readonly set: KernelSet<GridProblem, keyof typeof SPECS>;
  constructor(
    private readonly engine: Engine,
    private readonly op: Activation,
    readonly outputSize: number,
  ) {
    this.set = new KernelSet(engine, `${op} stage`, SPECS);
  }

  prepare(): Promise<void> {
    return this.set.prepare();
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    this.set.use();
    const n = batch * this.outputSize;
    this.set.dispatch(pass, 'forward', gridProblem(this.engine, n), { gate: io.gate, x: io.input, y: io.output }, { n, op: OPS[this.op] });
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    if (!io.gradInput) return;
    this.set.use();
    const n = batch * this.outputSize;
    this.set.dispatch(pass, 'adjoint', gridProblem(this.engine, n), { gate: io.gate, x: io.input, g_out: io.gradOutput, g_in: io.gradInput }, { n, op: OPS[this.op] });
  }
}

function activationStage(op: Activation): Stage {
  return Object.freeze({
    kind: op,
    params: Object.freeze({}),
    readsQd: false,
    instantiate: (engine: Engine, inputSize: number) => new ElementwiseKernels(engine, op, inputSize),
    epilogueLink: () => ({ op }),
  });
}

/** Elementwise `tanh` (finite for any input; NaN passes through). */
export function tanh(): Stage {
  return activationStage('tanh');
}

/** Elementwise `max(x, 0)`; its derivative at 0 is taken as 0. */
export function relu(): Stage {
  return activationStage('relu');
}

/**
 * Elementwise GELU, the tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (the
 * default of `jax.nn.gelu`).
 */
export function gelu(): Stage {
  return activationStage('gelu');
}
