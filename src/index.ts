/**
 * anchorax — deep-equilibrium (implicit) layers on the GPU through WebGPU.
 *
 * ```ts
 * const engine = await Engine.create();
 * const f = implicitBlock(engine, { weight, bias });
 * const { uStar, tnstep, stats } = await broyden(f, engine.tensor(qd, [batch, d]));
 * ```
 */
export { Engine, type EngineOptions, type FromDeviceOptions, type EngineMemory, type EngineCounters } from './engine';
export { Tensor } from './tensor';
export { implicitBlock, TanhBlock, type TanhBlockParams, type ForwardKernelChoice } from './layers/tanh-block';
export type { DropoutOptions, DropoutNoise } from './layers/dropout';
export type { ImplicitLayer, ForwardIO, AdjointIO, FusedPicardPath } from './layers/layer';
export type { Stage } from './layers/stage';
export { sequential, Sequential, type SequentialOptions } from './layers/sequential';
export { tanh, relu, gelu } from './layers/stages/elementwise';
export { add, Qd } from './layers/stages/add';
export { dropout } from './layers/stages/dropout';
export { conv2d, Conv2d, type Conv2dOptions } from './layers/stages/conv2d';
export { groupNorm, layerNorm, Norm, type GroupNormOptions, type LayerNormOptions } from './layers/stages/norm';
export { defineLayer, CustomLayer, type LayerDefinition } from './layers/define';
export { gradcheck, type GradcheckOptions, type GradcheckReport, type GradcheckEntry } from './layers/gradcheck';
export type { BufferRegion } from './gpu/kernel';
export { ShaderCompileError } from './gpu/kernel';
export { picard } from './solvers/picard';
export { anderson } from './solvers/anderson';
export { broyden } from './solvers/broyden';
export type { SolverOptions, StopMode, Convergence } from './solvers/options';
export { fixedPointCache, FixedPointCache, type FixedPointCacheOptions, type SampleIndices } from './solvers/warm-start';
export { Optimizer } from './optim/optimizer';
export { adam, Adam, type AdamOptions } from './optim/adam';
export { sgd, SGD, type SgdOptions } from './optim/sgd';
export { gradientAccumulator, GradientAccumulator } from './optim/accumulate';
export { mse, type Loss } from './losses';
export { softmaxCrossEntropy, type SoftmaxCrossEntropyLoss, type Labels } from './losses/softmax';
export { Linear, linear, type LinearParams, type LinearGradBuffers, type LinearGrads } from './layers/linear';
export { jfb } from './backprop/jfb';
export { gdeq } from './backprop/gdeq';
export { ift, type IftOptions, type IftResult } from './backprop/ift';
export { phantom, type PhantomOptions, type PhantomForm } from './backprop/phantom';
export { spectralRadius, type SpectralRadiusOptions } from './backprop/stability';
export { jacobianPenalty, JACOBIAN_PENALTY_H, type JacobianPenalty, type JacobianPenaltyOptions } from './backprop/jacobian-penalty';
export type { ImplicitOptions, ImplicitResult, Gradients, BackwardOptions, BackwardInfo, OnUnconverged } from './backprop/implicit';
export type { SolveResult, SolveStats, SolveStatus, PerSampleStats, BroydenFactors, Solver } from './results';
export {
  AnchoraxError,
  ShapeError,
  NonFiniteError,
  OptionError,
  DisposedError,
  EngineMismatchError,
  LimitError,
  TimeoutError,
  DeviceLostError,
  GpuValidationError,
  NoAdapterError,
  FormatError,
  ScopeError,
  ConvergenceError,
} from './errors';
export { saveParams, loadParams, paramsMetadata, type SaveParamsOptions, type LoadParamsOptions, type ParamsSource } from './io/params';
export {
  weightNorm,
  spectralNorm,
  WeightNorm,
  SpectralNorm,
  type NormalizableLayer,
  type WeightNormOptions,
  type SpectralNormOptions,
  type NormUpdateOptions,
  type NormGradBuffers,
  type NormGradients,
} from './layers/weight-norms';
