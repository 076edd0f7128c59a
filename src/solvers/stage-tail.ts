/**
 * What the solvers' steps inside a layer's last stage kernel share (ImplicitLayer.fusedStageTail:
 * picard_norm_step / picard_conv_step, anderson_norm_measure / anderson_conv_measure,
 * broyden_norm_step / broyden_conv_step, and Broyden's norm head): the stage's uniform members,
 * its operands and constants, and its grid. The uniforms of lib/step.wgsl,
 * lib/anderson_measure.wgsl and lib/broyden_stage.wgsl name the members alike.
 */
import { wgslConstant, type ShaderName } from '../gpu/shaders';
import type { FusedConv, FusedNorm, FusedStageTail } from '../layers/layer';
import type { SolveRun } from './run';

/** A norm or a convolution, as a tail or a head carries it. */
export type StageKernel = { kind: 'norm'; norm: FusedNorm } | { kind: 'conv'; conv: FusedConv };

/** The stage members of the step uniforms, none set (a kernel around no stage). */
export const NO_STAGE: Readonly<Record<string, number>> = Object.freeze({
  norm_groups: 0, norm_channels: 0, norm_spatial: 0, norm_eps: 0, conv_height: 0, conv_width: 0, conv_in: 0, conv_out: 0,
});

/**
 * The stage steps' threads (all 64: test/shader-reflection.test.ts), so their partials per
 * workgroup with thread sums.
 */
export const STAGE_STEP_THREADS = wgslConstant('picardNormStep', 'REDUCE_SIZE', 'u32');

/** The uniform members giving a step kernel its stage's shape: m (a norm's rows) and the norm's or the convolution's. */
export function stageMembers(run: SolveRun, stage: StageKernel): Record<string, number> {
  if (stage.kind === 'norm') {
    const { groups, channels, spatial, eps } = stage.norm;
    return { ...NO_STAGE, m: run.batch, norm_groups: groups, norm_channels: channels, norm_spatial: spatial, norm_eps: eps };
  }
  const { height, width, inChannels, outChannels } = stage.conv;
  return { ...NO_STAGE, m: 0, conv_height: height, conv_width: width, conv_in: inChannels, conv_out: outChannels };
}

/** A stage tail's kernel, as its solver runs it. */
export interface StageStep {
  /** The solver's kernel for this kind. */
  shader: ShaderName;
  /** The stage's chain constants (lib/epilogue.wgsl). */
  constants: Readonly<Record<string, number>>;
  /** Its operand bindings: gamma and beta, or weight and bias. */
  operands: Record<string, GPUBuffer>;
  /** Its uniform members (stageMembers). */
  members: Record<string, number>;
  /** Its dispatch: a norm's (row, group) workgroups, or a convolution's the generic step's. */
  grid: [number, number];
}

/** The step of `tail` for a solver whose kernels are `shaders` (the kinds SolveRun.stageTail accepted). */
export function stageStep(run: SolveRun, tail: FusedStageTail, shaders: Record<FusedStageTail['kind'], ShaderName>): StageStep {
  const members = stageMembers(run, tail);
  return tail.kind === 'norm'
    ? { shader: shaders.norm, constants: tail.norm.constants, operands: { gamma: tail.norm.gamma, beta: tail.norm.beta }, members, grid: tail.norm.grid }
    : { shader: shaders.conv, constants: tail.conv.constants, operands: { weight: tail.conv.weight, bias: tail.conv.bias }, members, grid: [run.stepGroups(), 1] };
}
