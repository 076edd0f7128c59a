/**
 * Elementwise activation stages: `tanh()`, `relu()`, `gelu()` (shaders/stages/elementwise.wgsl).
 * They take rows of any size and keep it.
 */
import type { Engine } from '../../engine';
import type { Kernel } from '../../gpu/kernel';
import { SHADERS, wgslConstant } from '../../gpu/shaders';
import type { Stage, StageAdjointIO, StageForwardIO, StageKernels } from '../stage';
import { gridGroups } from './common';

/** @internal The op codes of the activations, reflected from the `OP_*` constants of shaders/lib/activations.wgsl (which stages/elementwise.wgsl includes). */
export const OPS = {
  tanh: wgslConstant('stageElementwise', 'OP_TANH', 'u32'),
  relu: wgslConstant('stageElementwise', 'OP_RELU', 'u32'),
  gelu: wgslConstant('stageElementwise', 'OP_GELU', 'u32'),
} as const;

type Activation = keyof typeof OPS;

class ElementwiseKernels implements StageKernels {
  private kernels?: { forward: Kernel; adjoint: Kernel };
  constructor(
    private readonly engine: Engine,
    private readonly op: Activation,
    readonly outputSize: number,
  ) {}

  async prepare(): Promise<void> {
    const { engine } = this;
    this.kernels ??= {
      forward: await engine.kernel('stageActivation', SHADERS.stageElementwise, 'forward_main'),
      adjoint: await engine.kernel('stageActivationAdjoint', SHADERS.stageElementwise, 'adjoint_main'),
    };
  }

  private prepared(): NonNullable<ElementwiseKernels['kernels']> {
    if (!this.kernels) throw new Error(`${this.op} stage: prepare() must run before encoding`);
    return this.kernels;
  }

  encodeForward(pass: GPUComputePassEncoder, io: StageForwardIO, batch: number): void {
    const { forward } = this.prepared();
    const n = batch * this.outputSize;
    const params = this.engine.params(forward, { n, op: OPS[this.op] });
    forward.dispatch(pass, forward.bind({ gate: io.gate, params, x: io.input, y: io.output }), gridGroups(this.engine, n));
  }

  encodeAdjoint(pass: GPUComputePassEncoder, io: StageAdjointIO, batch: number): void {
    if (!io.gradInput) return;
    const { adjoint } = this.prepared();
    const n = batch * this.outputSize;
    const params = this.engine.params(adjoint, { n, op: OPS[this.op] });
    const group = adjoint.bind({ gate: io.gate, params, x: io.input, g_out: io.gradOutput, g_in: io.gradInput });
    adjoint.dispatch(pass, group, gridGroups(this.engine, n));
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
