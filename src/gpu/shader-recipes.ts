/**
 * How the library's WGSL sources are composed from the files in shaders/ (each shared piece of
 * shaders/lib is written once and prepended where a kernel needs it). An entry ending in `.wgsl` is
 * a file under shaders/; any other entry is WGSL text itself. The pieces of a recipe are joined
 * with newlines.
 *
 * This module is data only: scripts/vite-wgsl-reflect.ts reads it at build time, composes the
 * sources, reflects every kernel (bindings, uniform layout, workgroup size) and serves both as the
 * module `virtual:anchorax-shaders` that src/gpu/shaders.ts imports.
 * @internal
 */

const gate = 'lib/gate.wgsl';
const rng = 'lib/rng.wgsl';
const dropout = 'lib/dropout.wgsl';
const activations = 'lib/activations.wgsl';
const control = 'lib/control.wgsl';
const broydenState = 'lib/broyden_state.wgsl';
const finishStep = 'lib/finish_step.wgsl';
const grid = 'lib/grid.wgsl';
const andersonRing = 'lib/anderson_ring.wgsl';
const epilogue = [activations, 'lib/epilogue.wgsl', rng, dropout, 'lib/epilogue_dropout.wgsl'] as const;
const gemmRows = 'lib/gemm_rows.wgsl';
const gemmSplit = 'lib/gemm_split.wgsl';
const gemmTiled = 'lib/gemm_tiled.wgsl';

/** lib/reduce.wgsl over 256-thread workgroups, and over 64 (see its header for why). */
const reduce = ['const REDUCE_SIZE: u32 = 256u;', 'lib/reduce.wgsl'] as const;
const reduce64 = ['const REDUCE_SIZE: u32 = 64u;', 'lib/reduce.wgsl'] as const;

/** @internal The kernels, by name: each one's every @compute entry point is reflected at build time. */
export const KERNEL_RECIPES = {
  residual: [control, ...reduce64, 'residual.wgsl'],
  finish: [control, ...reduce64, finishStep, 'finish.wgsl'],
  picardFused: [control, ...reduce, finishStep, activations, 'lib/epilogue.wgsl', 'lib/epilogue_fixed.wgsl', 'picard_fused.wgsl'],
  commit: [control, 'commit.wgsl'],
  andersonGram: [control, ...reduce64, 'anderson_gram.wgsl', andersonRing],
  andersonSolve: [control, 'anderson_solve.wgsl', andersonRing],
  andersonMix: [control, 'anderson_mix.wgsl', andersonRing],
  broydenStep: [control, broydenState, 'broyden_step.wgsl'],
  broydenFinalize: [control, broydenState, ...reduce64, 'broyden_finalize.wgsl'],
  broydenDots: [control, broydenState, ...reduce64, 'broyden_dots.wgsl'],
  broydenCoef: [control, 'broyden_coef.wgsl'],
  broydenRankOne: [control, broydenState, ...reduce64, 'broyden_rank_one.wgsl'],
  broydenUpdate: [control, broydenState, ...reduce64, 'broyden_update.wgsl'],
  lineSearch: [control, ...reduce, 'line_search.wgsl'],
  transpose: ['transpose.wgsl'],
  mse: [...reduce, 'mse.wgsl'],
  gdeqPrecondition: [...reduce, 'gdeq_precondition.wgsl'],
  adam: ['adam.wgsl'],
  sgd: ['sgd.wgsl'],
  accumulate: ['accumulate.wgsl'],
  nonFinite: ['nonfinite.wgsl'],
  dense: [gate, ...epilogue, gemmRows, gemmSplit, gemmTiled, 'dense.wgsl'],
  denseDelta: [gate, ...epilogue, gemmRows, gemmTiled, 'dense_delta.wgsl'],
  denseWeightGrad: [gate, gemmRows, gemmTiled, 'dense_weight_grad.wgsl'],
  denseInputGrad: [gate, gemmRows, gemmTiled, 'dense_input_grad.wgsl'],
  softmaxXent: [...reduce, 'softmax_xent.wgsl'],
  stageElementwise: [gate, activations, grid, 'stages/elementwise.wgsl'],
  stageVector: [gate, grid, 'stages/vector.wgsl'],
  stageAddQd: [gate, grid, 'stages/add_qd.wgsl'],
  stageDropout: [gate, rng, dropout, grid, 'stages/dropout.wgsl'],
  stageConv2d: [gate, grid, ...reduce64, 'stages/conv2d.wgsl'],
  stageNorm: [gate, ...reduce64, 'stages/norm.wgsl'],
} as const satisfies Record<string, readonly string[]>;

/**
 * @internal Other sources (pieces, not kernels): each one's structs are reflected at build time.
 * `customLayerHead` (gate, randomness, the accessors users call) goes before defineLayer's
 * parameter declarations and user WGSL, `customLayerMain` after.
 */
export const SOURCE_RECIPES = {
  control: [control],
  customLayerHead: [gate, rng, grid, 'lib/custom_layer.wgsl'],
  customLayerMain: ['custom_layer_main.wgsl'],
} as const satisfies Record<string, readonly string[]>;

/** @internal Names of the library's kernels. */
export type ShaderName = keyof typeof KERNEL_RECIPES;
/** @internal Names of the other composed sources. */
export type SourceName = keyof typeof SOURCE_RECIPES;
