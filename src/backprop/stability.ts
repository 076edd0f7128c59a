/**
 * Stability diagnostics of an implicit layer at its fixed point, computed on the GPU with the
 * layer's own adjoint kernels and returned as tensors (no readback, so a training loop can log
 * them when it reads its loss).
 */
import type { Engine } from '../engine';
import { ShapeError } from '../errors';
import { SHADERS } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import { readInteger, readLayer, readOptions, readTensor } from '../validate';

/** Options of {@link spectralRadius}. */
export interface SpectralRadiusOptions {
  /** Power iterations, an integer in [2, 65536]. Default 100. */
  iterations?: number;
  /** Seed of the starting vector, a u32. Default 0. */
  seed?: number;
}

/**
 * @internal
 * Checks the (f, Qd, uStar) triple of the stability tools: a layer, and two live tensors of its
 * engine with one shape, `[d]` or `[batch, d]` for the layer's featureSize d.
 * @throws OptionError (`'f'`), ShapeError / DisposedError / EngineMismatchError (`'Qd'`, `'uStar'`).
 */
export function readStatePoint(f: ImplicitLayer, Qd: Tensor, uStar: Tensor): { engine: Engine; batch: number; n: number } {
  readLayer(f, 'f');
  const engine: Engine = f.engine;
  readTensor(Qd, 'Qd', engine);
  readTensor(uStar, 'uStar', engine);
  const d = f.featureSize;
  const shapeOk = (Qd.shape.length === 1 && Qd.shape[0] === d) || (Qd.shape.length === 2 && Qd.shape[1] === d);
  if (!shapeOk) throw new ShapeError('Qd', `must have shape [${d}] or [batch, ${d}], got [${Qd.shape.join(', ')}]`);
  if (uStar.shape.join() !== Qd.shape.join()) throw new ShapeError('uStar', `must have Qd's shape [${Qd.shape.join(', ')}], got [${uStar.shape.join(', ')}]`);
  return { engine, batch: Qd.shape.length === 2 ? Qd.shape[0] : 1, n: Qd.size };
}

/** A start vector in [−1, 1) from a small LCG (the same seed gives the same estimate). */
function startVector(n: number, seed: number): Float32Array {
  let state = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/**
 * The spectral radius ρ(J_f) of the Jacobian of f with respect to u at (uStar, Qd), by power
 * iteration on vector-Jacobian products (v ← J_fᵀv / ‖J_fᵀv‖; Jᵀ has J's eigenvalues): the
 * estimate is the geometric mean of the growth factors ‖J_fᵀv‖ over the second half of the
 * iterations, which converges to ρ also when the dominant eigenvalues are a complex pair (more
 * slowly: about 1/iterations). ρ < 1 means f is locally a contraction at its fixed point, which
 * is what the solvers' convergence rests on. With a batch, J_f is block diagonal over the rows and
 * ρ is the largest of the rows'. Inference mode: a stochastic layer draws no noise.
 *
 * Returns a `[1]` tensor on the GPU (one submit, no readback); `await (await spectralRadius(…)).read()`
 * gives the number.
 * @throws OptionError (`'f'`, `'options'`, `'options.iterations'`, `'options.seed'`), ShapeError /
 * DisposedError / EngineMismatchError (`'Qd'`, `'uStar'`), DeviceLostError.
 */
export async function spectralRadius(f: ImplicitLayer, Qd: Tensor, uStar: Tensor, options?: SpectralRadiusOptions): Promise<Tensor> {
  const { engine, batch, n } = readStatePoint(f, Qd, uStar);
  const o = readOptions(options, 'options', ['iterations', 'seed']);
  const iterations = readInteger(o.iterations, 'options.iterations', 100, 2, 65536);
  const seed = readInteger(o.seed, 'options.seed', 0, 0, 0xffffffff);
  await f.prepare(batch);
  const kernel = await engine.kernel('powerStep', SHADERS.powerStep);
  await engine.settleWraps();
  Qd.assertUsable(engine, 'Qd');
  uStar.assertUsable(engine, 'uStar');
  const v = engine.tensor(startVector(n, seed), [n]);
  const w = engine.allocate(n * 4, 'uStar');
  const state = engine.zeros([2]);
  const out = engine.zeros([1]);
  const late = Math.floor(iterations / 2);
  try {
    await engine.submit('spectralRadius', (encoder) => {
      const pass = encoder.beginComputePass();
      for (let i = 0; i < iterations; i++) {
        f.encodeAdjoint(pass, { input: uStar.buffer, Qd: Qd.buffer, gradOutput: v.buffer, gradInput: w, gate: engine.openGate() }, batch);
        const params = engine.params(kernel, { n, accumulate: i >= late ? 1 : 0, count: i === iterations - 1 ? iterations - late : 0 });
        kernel.dispatch(pass, kernel.bind({ params, w, v: v.buffer, state: state.buffer }), 1);
      }
      pass.end();
      encoder.copyBufferToBuffer(state.buffer, 4, out.buffer, 0, 4);
    });
  } catch (err) {
    out.dispose();
    throw err;
  } finally {
    v.dispose();
    state.dispose();
    engine.releaseBuffer(w);
  }
  return out;
}
