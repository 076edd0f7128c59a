/**
 * Picard iteration u ← f(u), keeping the best iterate.
 *
 * One evaluation per iteration: evaluating f at u_t yields u_{t+1}, its residual u_{t+1} − u_t,
 * and (for t = 0) the initial residual too. Iterates alternate between two buffers.
 * A layer that offers a fused path (a small deterministic dense layer with a fused epilogue, such as the tanh block)
 * takes it instead: whole iterations, `checkEvery` of them per dispatch, in one workgroup
 * (shaders/picard_fused.wgsl), by the same rules.
 */
import type { FusedPicardPath, ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { FinishMode, SolveRun } from './run';
import type { SolveResult } from '../results';

/** Finds u* = f(u*, Qd) by fixed-point iteration. See {@link SolverOptions}. */
export async function picard(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  const run = await SolveRun.start('picard', f, Qd, options, []);
  const fused = run.opts.fused ? (f.fusedPicard?.(run.batch) ?? null) : null;
  if (fused?.kind !== 'dense') return picardSteps(run);
  await run.addKernel('picardFused', fused.constants);
  return picardFused(run, fused);
}

/** One kernel per step: evaluate, residual sums, finish, commit. */
async function picardSteps(run: SolveRun): Promise<SolveResult> {
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

/** Whole iterations in one workgroup, `checkEvery` per dispatch, one dispatch per submit. */
async function picardFused(run: SolveRun, block: FusedPicardPath): Promise<SolveResult> {
  const state = run.scratchBuffer(run.n);
  const kernel = run.kernel('picardFused');
  const iterations = run.opts.checkEvery;
  const group = (first: boolean) =>
    kernel.bind({
      ctrl: run.ctrl,
      params: run.params('picardFused', {
        ...run.finishRules(), d: run.layer.featureSize, batch: run.batch, iterations, first: first ? 1 : 0,
      }),
      weight: block.weight, bias: block.bias, epi_qd: run.Qd.buffer, state, best_u: run.bestU, best_prev: run.bestPrev,
    });
  const firstGroup = group(true);
  const nextGroup = group(false);
  const dispatches = Math.ceil(run.opts.maxDepth / iterations);
  const snapshot = await run.run(
    (encoder) => {
      run.encodeStart(encoder, state);
      const pass = encoder.beginComputePass();
      kernel.dispatch(pass, firstGroup, 1);
      pass.end();
    },
    (pass) => kernel.dispatch(pass, nextGroup, 1),
    1,
    dispatches,
    1,
    iterations,
  );
  return run.result(snapshot);
}
