/**
 * anchorax — deep-equilibrium (implicit) layers on the GPU through WebGPU.
 *
 * ```ts
 * const engine = await Engine.create();
 * const f = engine.implicitBlock({ w, b });
 * const { uStar, tnstep, stats } = await broyden(f, engine.tensor(qd, [batch, d]));
 * ```
 */
export { Engine, type EngineOptions } from './engine';
export { Tensor } from './tensor';
export { TanhBlock, type TanhBlockParams } from './layers/tanh-block';
export type { ImplicitLayer, ForwardIO } from './layers/layer';
export type { BufferRegion } from './gpu/kernel';
export { ShaderCompileError } from './gpu/kernel';
export { picard } from './solvers/picard';
export { anderson } from './solvers/anderson';
export { broyden } from './solvers/broyden';
export type { SolverOptions, StopMode } from './solvers/options';
export type { SolveResult, SolveStats, BroydenFactors } from './solvers/run';
export {
  AnchoraxError,
  ShapeError,
  NonFiniteError,
  OptionError,
  DisposedError,
  EngineMismatchError,
  LimitError,
  DeviceLostError,
  NoAdapterError,
} from './errors';
