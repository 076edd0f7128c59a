/**
 * Limited-memory Broyden on the flattened state (all batch rows together), B ≈ J_g⁻¹ kept as
 * B = −I + U Vᵀ with L rank-one columns in a ring.
 *
 * Per iteration: x' = x + s·update (Armijo line search optional), g' = f(x') − x', best-so-far,
 * then the rank-one update  vᵀ = Δxᵀ B,  u = (Δx − B Δg) / (vᵀΔg + 1e-9)  into column nstep mod L,
 * and the next direction update = −B g' (dots → coefficients → v, w → update; see the shaders).
 * shaders/broyden_coef.wgsl.
 */
import type { ImplicitLayer } from '../layers/layer';
import { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { FinishMode, SolveRun, type BroydenFactors, type SolveResult } from './run';

/** Evaluations the line search may need: s = 1, the quadratic step, and at most 6 halvings to 0.01. */
const LINE_SEARCH_EVALS = 8;

/** Finds u* = f(u*, Qd) by limited-memory Broyden. See {@link SolverOptions}. */
export async function broyden(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  const run = await SolveRun.start('broyden', f, Qd, options, [
    'broydenStep', 'broydenFinalize', 'broydenDots', 'broydenCoef', 'broydenRankOne', 'broydenUpdate', 'lineSearch', 'transpose',
  ]);
  const { n, stride, reduceGroups, elementGroups, opts, engine } = run;
  const memory = opts.lbfgsThres;
  const xs = [run.scratchBuffer(n), run.scratchBuffer(n)];
  const gxs = [run.scratchBuffer(n), run.scratchBuffer(n)];
  const fx = run.scratchBuffer(n);
  const update = run.scratchBuffer(n);
  const us = run.scratchBuffer(memory * stride);
  const vts = run.scratchBuffer(memory * stride);
  const dotPartials = run.scratchBuffer(4 * reduceGroups * (memory + 1));
  const coef = run.scratchBuffer(4 * (memory + 2));
  const vNew = run.scratchBuffer(n);
  const wNew = run.scratchBuffer(n);
  const bestUs = opts.returnB ? run.scratchBuffer(memory * stride) : undefined;
  const bestVts = opts.returnB ? run.scratchBuffer(memory * stride) : undefined;

  const stepKernel = run.kernel('broydenStep');
  const stepParams = run.params('broydenStep', { n, groups: elementGroups });
  const finalizeKernel = run.kernel('broydenFinalize');
  const dotsKernel = run.kernel('broydenDots');
  const dotsParams = run.params('broydenDots', { n, groups: reduceGroups, stride });
  const coefKernel = run.kernel('broydenCoef');
  const coefGroup = coefKernel.bind({
    ctrl: run.ctrl,
    params: run.params('broydenCoef', { groups: reduceGroups, memory }),
    partials: dotPartials,
    coef,
  });
  const rankOneKernel = run.kernel('broydenRankOne');
  const rankOneParams = run.params('broydenRankOne', { n, groups: reduceGroups, stride });
  const updateKernel = run.kernel('broydenUpdate');
  const updateParams = run.params('broydenUpdate', { n, groups: reduceGroups, stride });
  const lineSearchKernel = run.kernel('lineSearch');
  const lineSearchGroup = lineSearchKernel.bind({
    ctrl: run.ctrl,
    params: run.params('lineSearch', { groups: reduceGroups }),
    partials: run.partials,
  });

  const finalize = (pass: GPUComputePassEncoder, x: GPUBuffer, xEval: GPUBuffer, gxNew: GPUBuffer, applyStep: boolean) => {
    const params = run.params('broydenFinalize', { n, groups: reduceGroups, apply_step: applyStep ? 1 : 0 });
    const group = finalizeKernel.bind({ ctrl: run.ctrl, params, x, update, fx, x_eval: xEval, gx_new: gxNew, partials: run.partials });
    finalizeKernel.dispatch(pass, group, reduceGroups);
  };
  const trialPoint = (pass: GPUComputePassEncoder, x: GPUBuffer, xEval: GPUBuffer) => {
    stepKernel.dispatch(pass, stepKernel.bind({ ctrl: run.ctrl, params: stepParams, x, update, x_eval: xEval }), elementGroups);
    run.evaluate(pass, xEval, fx);
  };

  const snapshot = await run.run(
    (encoder) => {
      run.encodeStart(encoder, xs[0]);
      encoder.clearBuffer(us);
      encoder.clearBuffer(vts);
      if (bestUs && bestVts) {
        encoder.clearBuffer(bestUs);
        encoder.clearBuffer(bestVts);
      }
      const pass = encoder.beginComputePass();
      run.evaluate(pass, xs[0], fx);
      finalize(pass, update, xs[0], gxs[0], false); // g(x0); x0 stays
      run.finish(pass, FinishMode.broydenFirst);
      run.commit(pass, xs[0], xs[0]);
      pass.end();
      encoder.copyBufferToBuffer(gxs[0], 0, update, 0, n * 4); // first direction: update = g(x0)
    },
    (pass, t) => {
      const [x, xNew] = [xs[t % 2], xs[(t + 1) % 2]];
      const [gx, gxNew] = [gxs[t % 2], gxs[(t + 1) % 2]];
      if (opts.ls) {
        for (let k = 0; k < LINE_SEARCH_EVALS; k++) {
          trialPoint(pass, x, xNew);
          run.residual(pass, xNew, fx, true);
          lineSearchKernel.dispatch(pass, lineSearchGroup, 1);
        }
      } else {
        trialPoint(pass, x, xNew);
      }
      finalize(pass, x, xNew, gxNew, opts.ls);
      run.finish(pass, FinishMode.broyden);
      run.commit(pass, xNew, x);
      if (bestUs && bestVts) run.commitInto(pass, us, vts, bestUs, bestVts, memory * stride);

      const columns = Math.min(t, memory);
      const dotsGroup = dotsKernel.bind({
        ctrl: run.ctrl, params: dotsParams, x, x_new: xNew, gx, gx_new: gxNew, u_cols: us, vt_rows: vts, partials: dotPartials,
      });
      dotsKernel.dispatch(pass, dotsGroup, reduceGroups, columns + 1);
      coefKernel.dispatch(pass, coefGroup, 1);
      const rankOneGroup = rankOneKernel.bind({
        ctrl: run.ctrl, params: rankOneParams, coef, x, x_new: xNew, gx, gx_new: gxNew, u_cols: us, vt_rows: vts,
        v_new: vNew, w_new: wNew, partials: run.partials,
      });
      rankOneKernel.dispatch(pass, rankOneGroup, reduceGroups);
      const updateGroup = updateKernel.bind({
        ctrl: run.ctrl, params: updateParams, coef, gx_new: gxNew, v_new: vNew, w_new: wNew, partials: run.partials,
        u_cols: us, vt_rows: vts, update,
      });
      updateKernel.dispatch(pass, updateGroup, reduceGroups);
    },
    0,
    opts.maxDepth,
  );

  let factors: BroydenFactors | undefined;
  if (bestUs && bestVts) {
    const transpose = run.kernel('transpose');
    const Us = engine.allocate(n * memory * 4, 'options.lbfgsThres');
    const VTs = engine.allocate(n * memory * 4, 'options.lbfgsThres');
    const encoder = engine.device.createCommandEncoder({ label: 'anchorax broyden factors' });
    const pass = encoder.beginComputePass();
    const dispatchCopy = (src: GPUBuffer, dst: GPUBuffer, transposed: number) => {
      const params = run.params('transpose', { n, memory, stride, transpose: transposed });
      transpose.dispatch(pass, transpose.bind({ params, src, dst }), Math.ceil(n / 64), memory);
    };
    dispatchCopy(bestUs, Us, 1);
    dispatchCopy(bestVts, VTs, 0);
    pass.end();
    engine.device.queue.submit([encoder.finish()]);
    factors = {
      Us: new Tensor(engine, Us, [n, memory], true),
      VTs: new Tensor(engine, VTs, [memory, n], true),
      validMask: Array.from({ length: memory }, (_, j) => j < snapshot.bestNValid),
    };
  }
  return run.result(snapshot, factors);
}
