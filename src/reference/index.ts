// CPU float64 oracle for the GPU solvers and gradients. Imports nothing outside src/reference/.
export { refBlockForward, refBlockVjp, refBlockJtv, refBlockMap, type RefBlock, type RefBlockGrads } from './block';
export {
  refPicard,
  refAnderson,
  refBroyden,
  refBroydenMatvec,
  type RefMap,
  type RefSolveOptions,
  type RefSolveResult,
  type RefBroydenFactors,
} from './solvers';
export { refArmijoLineSearch, type RefLineSearchResult } from './linesearch';
export { refPreconditionGdeq, refIftAdjoint, refJfb, refGdeq, refIft, type RefGrads } from './backprop';
export {
  refPhantom,
  refPhantomBlock,
  refBlockDifferentiable,
  type RefDifferentiable,
  type RefPhantomOptions,
  type RefPhantomResult,
} from './phantom';
export { RefAdam, RefSgd, type RefAdamOptions, type RefSgdOptions } from './optim';
export { refRngPermute, refRngStreamKey, refRngU32, refDropoutMask, refDropoutBlockForward, type RefDropout } from './dropout';
export { refLinearForward, refLinearVjp, type RefLinear, type RefLinearGrads } from './linear';
export { refSoftmaxCrossEntropy, type RefSoftmaxXent } from './softmax';
export {
  refActivation,
  refActivationVjp,
  refActivationStage,
  refAddQdStage,
  refDropoutStageFactors,
  refSequentialForward,
  refSequentialVjp,
  type RefActivation,
  type RefStage,
} from './stages';
export { refConv2dForward, refConv2dVjp, type RefConv2d, type RefConv2dGrads } from './conv2d';
export { refGroupNormForward, refGroupNormVjp, refLayerNormForward, refLayerNormVjp, type RefGroupNorm, type RefLayerNorm, type RefNormGrads } from './norm';
export { refBlockJacobianRows, refSpectralRadius } from './stability';
export {
  refWeightNorm,
  refWeightNormVjp,
  refSpectralNorm,
  refSpectralNormVjp,
  refPowerIteration,
  refBilinear,
  refLargestSingularValue,
  refFiniteDifferences,
  type RefMatrix,
  type RefNormGradients,
} from './weight-norm';
export { refRademacher, refBlockJacobianPenalty, refBlockJacobianFrobenius, type RefJacobianPenalty } from './jacobian-penalty';
