/**
 * Picard iteration u ← f(u), keeping the best iterate.
 *
 * One evaluation per iteration: evaluating f at u_t yields u_{t+1}, its residual u_{t+1} − u_t,
 * and (for t = 0) the initial residual too. Iterates alternate between two buffers.
 */
import type { ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { FinishMode, SolveRun, type SolveResult } from './run';

/** Finds u* = f(u*, Qd) by fixed-point iteration. See {@link SolverOptions}. */
export async function picard(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  const run = await SolveRun.start('picard', f, Qd, options, []);
  const iterates = [run.scratchBuffer(run.n), run.scratchBuffer(run.n)];

  const step = (pass: GPUComputePassEncoder, t: number, mode: FinishMode): void => {
    const u = iterates[t % 2];
    const next = iterates[(t + 1) % 2];
    run.evaluate(pass, u, next); // next = f(u)
    run.residual(pass, u, next);
    run.finish(pass, mode);
    run.commit(pass, next, u);
  };

  const snapshot = await run.run(
    (encoder) => {
      run.encodeStart(encoder, iterates[0]);
      const pass = encoder.beginComputePass();
      step(pass, 0, FinishMode.picardFirst);
      pass.end();
    },
    (pass, t) => step(pass, t, FinishMode.picard),
    1,
    run.opts.maxDepth,
  );
  return run.result(snapshot);
}
