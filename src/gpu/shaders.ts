/**
 * WGSL sources, composed from the shared pieces in shaders/lib (each piece is written once and
 * prepended where a kernel needs it).
 */
import gate from '../../shaders/lib/gate.wgsl?raw';
import rng from '../../shaders/lib/rng.wgsl?raw';
import dropout from '../../shaders/lib/dropout.wgsl?raw';
import activations from '../../shaders/lib/activations.wgsl?raw';
import control from '../../shaders/lib/control.wgsl?raw';
import reduceBody from '../../shaders/lib/reduce.wgsl?raw';
import broydenState from '../../shaders/lib/broyden_state.wgsl?raw';
import blockIo from '../../shaders/lib/block_io.wgsl?raw';
import blockTile from '../../shaders/lib/block_tile.wgsl?raw';
import blockForward from '../../shaders/block_forward.wgsl?raw';
import blockDelta from '../../shaders/block_delta.wgsl?raw';
import blockMm from '../../shaders/lib/block_mm.wgsl?raw';
import blockPartial from '../../shaders/block_partial.wgsl?raw';
import blockCombine from '../../shaders/block_combine.wgsl?raw';
import blockParamGrads from '../../shaders/block_param_grads.wgsl?raw';
import blockInputGrad from '../../shaders/block_input_grad.wgsl?raw';
import residual from '../../shaders/residual.wgsl?raw';
import finishStep from '../../shaders/lib/finish_step.wgsl?raw';
import finish from '../../shaders/finish.wgsl?raw';
import picardFused from '../../shaders/picard_fused.wgsl?raw';
import commit from '../../shaders/commit.wgsl?raw';
import andersonGram from '../../shaders/anderson_gram.wgsl?raw';
import andersonSolve from '../../shaders/anderson_solve.wgsl?raw';
import andersonMix from '../../shaders/anderson_mix.wgsl?raw';
import andersonRing from '../../shaders/lib/anderson_ring.wgsl?raw';
import broydenStep from '../../shaders/broyden_step.wgsl?raw';
import broydenFinalize from '../../shaders/broyden_finalize.wgsl?raw';
import broydenDots from '../../shaders/broyden_dots.wgsl?raw';
import broydenCoef from '../../shaders/broyden_coef.wgsl?raw';
import broydenRankOne from '../../shaders/broyden_rank_one.wgsl?raw';
import broydenUpdate from '../../shaders/broyden_update.wgsl?raw';
import lineSearch from '../../shaders/line_search.wgsl?raw';
import gdeqPrecondition from '../../shaders/gdeq_precondition.wgsl?raw';
import mse from '../../shaders/mse.wgsl?raw';
import transpose from '../../shaders/transpose.wgsl?raw';
import adam from '../../shaders/adam.wgsl?raw';
import sgd from '../../shaders/sgd.wgsl?raw';
import accumulate from '../../shaders/accumulate.wgsl?raw';
import nonFinite from '../../shaders/nonfinite.wgsl?raw';
import linear from '../../shaders/linear.wgsl?raw';
import softmaxXent from '../../shaders/softmax_xent.wgsl?raw';
import grid from '../../shaders/lib/grid.wgsl?raw';
import stageElementwise from '../../shaders/stages/elementwise.wgsl?raw';
import stageVector from '../../shaders/stages/vector.wgsl?raw';
import stageAddQd from '../../shaders/stages/add_qd.wgsl?raw';
import stageDropout from '../../shaders/stages/dropout.wgsl?raw';
import stageConv2d from '../../shaders/stages/conv2d.wgsl?raw';
import stageNorm from '../../shaders/stages/norm.wgsl?raw';
import customLayer from '../../shaders/lib/custom_layer.wgsl?raw';
import customLayerMain from '../../shaders/custom_layer_main.wgsl?raw';

const compose = (...parts: string[]): string => parts.join('\n');

/** lib/reduce.wgsl over 256-thread workgroups, and over 64 (see its header for why). */
const reduce = compose('const REDUCE_SIZE: u32 = 256u;', reduceBody);
const reduce64 = compose('const REDUCE_SIZE: u32 = 64u;', reduceBody);

/** The Control struct's source, for reflecting its layout on the CPU side. */
export const CONTROL_WGSL = control;

/**
 * The library's side of a defineLayer kernel: `head` (gate, randomness, the accessors users call)
 * goes before the parameter declarations and the user's WGSL, `main` after, with its
 * `ANCHORAX_VALUE` replaced by the call of the user's function.
 */
export const CUSTOM_LAYER_WGSL = { head: compose(gate, rng, grid, customLayer), main: customLayerMain } as const;

export const SHADERS = {
  blockForward: compose(gate, rng, dropout, activations, blockIo, blockTile, blockForward),
  blockDelta: compose(gate, rng, dropout, activations, blockIo, blockTile, blockDelta),
  blockForwardMm: compose(gate, rng, dropout, activations, blockIo, blockMm, blockForward),
  blockDeltaMm: compose(gate, rng, dropout, activations, blockIo, blockMm, blockDelta),
  blockPartial: compose(gate, blockPartial),
  blockCombine: compose(gate, rng, dropout, activations, blockCombine),
  blockParamGrads: compose(gate, blockParamGrads),
  blockInputGrad: compose(gate, blockInputGrad),
  residual: compose(control, reduce64, residual),
  finish: compose(control, reduce64, finishStep, finish),
  picardFused: compose(control, reduce, finishStep, activations, picardFused),
  commit: compose(control, commit),
  andersonGram: compose(control, reduce64, andersonGram, andersonRing),
  andersonSolve: compose(control, andersonSolve, andersonRing),
  andersonMix: compose(control, andersonMix, andersonRing),
  broydenStep: compose(control, broydenState, broydenStep),
  broydenFinalize: compose(control, broydenState, reduce64, broydenFinalize),
  broydenDots: compose(control, broydenState, reduce64, broydenDots),
  broydenCoef: compose(control, broydenCoef),
  broydenRankOne: compose(control, broydenState, reduce64, broydenRankOne),
  broydenUpdate: compose(control, broydenState, reduce64, broydenUpdate),
  lineSearch: compose(control, reduce, lineSearch),
  transpose: compose(transpose),
  mse: compose(reduce, mse),
  gdeqPrecondition: compose(reduce, gdeqPrecondition),
  adam: compose(adam),
  sgd: compose(sgd),
  accumulate: compose(accumulate),
  nonFinite: compose(nonFinite),
  linear: compose(gate, linear),
  softmaxXent: compose(reduce, softmaxXent),
  stageElementwise: compose(gate, activations, grid, stageElementwise),
  stageVector: compose(gate, grid, stageVector),
  stageAddQd: compose(gate, grid, stageAddQd),
  stageDropout: compose(gate, rng, dropout, grid, stageDropout),
  stageConv2d: compose(gate, grid, reduce64, stageConv2d),
  stageNorm: compose(gate, reduce64, stageNorm),
} as const;

export type ShaderName = keyof typeof SHADERS;
