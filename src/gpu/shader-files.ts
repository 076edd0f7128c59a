/**
 * The library's WGSL sources, by name: each names the file under shaders/ it is built from. A file
 * declares the pieces it needs itself (`//! include lib/gate.wgsl` lines, scripts/wgsl-includes.ts),
 * so this table lists no pieces.
 *
 * This module is data only: scripts/vite-wgsl-reflect.ts reads it at build time, composes each
 * source with its includes, reflects it (entry points, struct layouts, module-scope constants) and
 * serves the lot as the module `virtual:anchorax-shaders` that src/gpu/shaders.ts imports.
 * @internal
 */

/** @internal The kernels, by name: each one's every @compute entry point is reflected at build time. */
export const KERNEL_FILES = {
  residual: 'residual.wgsl',
  finish: 'finish.wgsl',
  picardFused: 'picard_fused.wgsl',
  picardStep: 'picard_step.wgsl',
  picardDenseStep: 'picard_dense_step.wgsl',
  picardPrefixStep: 'picard_prefix_step.wgsl',
  picardSplitStep: 'picard_split_step.wgsl',
  commit: 'commit.wgsl',
  andersonGram: 'anderson_gram.wgsl',
  andersonSolve: 'anderson_solve.wgsl',
  andersonStep: 'anderson_step.wgsl',
  andersonMeasure: 'anderson_measure.wgsl',
  andersonDenseStep: 'anderson_dense_step.wgsl',
  andersonPrefixStep: 'anderson_prefix_step.wgsl',
  andersonSplitStep: 'anderson_split_step.wgsl',
  andersonSplitMeasure: 'anderson_split_measure.wgsl',
  rowsMeasure: 'rows_measure.wgsl',
  rowsMix: 'rows_mix.wgsl',
  rowsFinish: 'rows_finish.wgsl',
  rowsBroyden: 'rows_broyden.wgsl',
  broydenStep: 'broyden_step.wgsl',
  broydenFinalize: 'broyden_finalize.wgsl',
  broydenMeasure: 'broyden_measure.wgsl',
  broydenDecide: 'broyden_decide.wgsl',
  broydenAdvance: 'broyden_advance.wgsl',
  broydenDenseStep: 'broyden_dense_step.wgsl',
  broydenPrefixStep: 'broyden_prefix_step.wgsl',
  broydenPrefixHead: 'broyden_prefix_head.wgsl',
  broydenPrefixNormHead: 'broyden_prefix_norm_head.wgsl',
  picardNormStep: 'picard_norm_step.wgsl',
  picardConvStep: 'picard_conv_step.wgsl',
  andersonNormMeasure: 'anderson_norm_measure.wgsl',
  andersonConvMeasure: 'anderson_conv_measure.wgsl',
  broydenNormStep: 'broyden_norm_step.wgsl',
  broydenConvStep: 'broyden_conv_step.wgsl',
  broydenSplitStep: 'broyden_split_step.wgsl',
  broydenSplitMeasure: 'broyden_split_measure.wgsl',
  lineSearch: 'line_search.wgsl',
  transpose: 'transpose.wgsl',
  mse: 'mse.wgsl',
  gdeqPrecondition: 'gdeq_precondition.wgsl',
  adam: 'adam.wgsl',
  sgd: 'sgd.wgsl',
  accumulate: 'accumulate.wgsl',
  powerStep: 'power_step.wgsl',
  weightNorm: 'weight_norm.wgsl',
  spectralNorm: 'spectral_norm.wgsl',
  jacobianPenalty: 'jacobian_penalty.wgsl',
  nonFinite: 'nonfinite.wgsl',
  dense: 'dense.wgsl',
  denseDelta: 'dense_delta.wgsl',
  denseWeightGrad: 'dense_weight_grad.wgsl',
  denseInputGrad: 'dense_input_grad.wgsl',
  softmaxXent: 'softmax_xent.wgsl',
  stageElementwise: 'stages/elementwise.wgsl',
  stageVector: 'stages/vector.wgsl',
  stageAddQd: 'stages/add_qd.wgsl',
  stageDropout: 'stages/dropout.wgsl',
  stageConv2d: 'stages/conv2d.wgsl',
  stageNorm: 'stages/norm.wgsl',
} as const satisfies Record<string, string>;

/**
 * @internal Other sources (pieces, not kernels): each one's structs and constants are reflected
 * at build time (gemmSlices: the scratch the slices body's sizes must fit; reduceSubgroups: the
 * fewest lanes its subgroups may have). defineLayer composes its kernels at run time as `customLayerHead` (gate,
 * randomness, the accessors users call), the parameter declarations, the user's WGSL, then
 * `customLayerMain`.
 */
export const SOURCE_FILES = {
  control: 'lib/control.wgsl',
  customLayerHead: 'lib/custom_layer.wgsl',
  customLayerMain: 'custom_layer_main.wgsl',
  gemmSlices: 'lib/gemm_slices.wgsl',
  reduceSubgroups: 'lib/reduce_subgroups.wgsl',
} as const satisfies Record<string, string>;

/**
 * @internal The pieces that have a variant for devices with the WebGPU `subgroups` feature, and
 * that variant. Every kernel that includes such a piece is composed twice at build time: as
 * written, and with each piece replaced by its variant after an `enable subgroups;` line (a
 * variant declares the same functions with the same signatures, and includes what the piece
 * includes). The engine compiles the second when its device has the feature.
 */
export const SUBGROUP_PIECES: Readonly<Record<string, string>> = {
  'lib/reduce.wgsl': 'lib/reduce_subgroups.wgsl',
};

/** @internal Names of the library's kernels. */
export type ShaderName = keyof typeof KERNEL_FILES;
/** @internal Names of the other composed sources. */
export type SourceName = keyof typeof SOURCE_FILES;
