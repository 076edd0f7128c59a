/**
 * Elementwise activation stages: `tanh()`, `relu()`, `gelu()` (shaders/stages/elementwise.wgsl).
 * They take rows of any size and keep it.
 */
import type { Engine } from '../../engine';
import { wgslConstant } from '../../gpu/shaders';
import type { Stage } from '../stage';
import { PointwiseKernels } from './common';

/** @internal The op codes of the activations, reflected from the `OP_*` constants of shaders/lib/activations.wgsl (which stages/elementwise.wgsl includes). */
export const OPS = {
  tanh: wgslConstant('stageElementwise', 'OP_TANH', 'u32'),
  relu: wgslConstant('stageElementwise', 'OP_RELU', 'u32'),
  gelu: wgslConstant('stageElementwise', 'OP_GELU', 'u32'),
} as const;

type Activation = keyof typeof OPS;

function activationStage(op: Activation): Stage {
  return Object.freeze({
    kind: op,
    params: Object.freeze({}),
    readsQd: false,
    instantiate: (engine: Engine, inputSize: number) =>
      new PointwiseKernels(engine, `${op} stage`, 'stageElementwise', inputSize, { op: OPS[op] }, { input: 'x', output: 'y' }),
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
