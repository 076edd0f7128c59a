/**
 * Limited-memory Broyden on the flattened state (all batch rows together), B ≈ J_g⁻¹ kept as
 * B = −I + U Vᵀ with L rank-one columns in a ring.
 *
 * Per iteration: x' = x + s·update (Armijo line search optional), g' = f(x') − x', best-so-far,
 * then the rank-one update  vᵀ = Δxᵀ B,  u = (Δx − B Δg) / (vᵀΔg + 1e-9)  into column nstep mod L,
 * and the next direction update = −B g' (dots → coefficients → v, w → update; see the shaders).
 * Iterate and residual pairs alternate between the slots of one state buffer by parity.
 */
import type { ImplicitLayer } from '../layers/layer';
import { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { broydenPerSample } from './per-sample';
import { FinishMode, SolveRun } from './run';
import type { BroydenFactors, SolveResult } from '../results';

/** Evaluations the line search may need: s = 1, the quadratic step, and at most 6 halvings to 0.01. */
const LINE_SEARCH_EVALS = 8;

/** Finds u* = f(u*, Qd) by limited-memory Broyden. See {@link SolverOptions}. */
export async function broyden(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  const run = await SolveRun.start('broyden', f, Qd, options, [
    'broydenStep', 'broydenFinalize', 'broydenDots', 'broydenCoef', 'broydenRankOne', 'broydenUpdate', 'lineSearch', 'transpose',
  ]);
  if (run.opts.convergence === 'per-sample') return broydenPerSample(run);
  const { n, stride, reduceGroups, elementGroups, opts, engine } = run;
  const memory = opts.lbfgsThres;
  const state = run.scratchBuffer(4 * stride); // x_a, x_b, g_a, g_b
  const factors = run.scratchBuffer(2 * memory * stride); // U columns, then Vᵀ rows
  const vw = run.scratchBuffer(2 * stride);
  const fx = run.scratchBuffer(n);
  const update = run.scratchBuffer(n);
  const dotPartials = run.scratchBuffer(4 * reduceGroups * (memory + 1));
  const coef = run.scratchBuffer(4 * (memory + 2));
  const bestFactors = opts.returnB ? [run.scratchBuffer(memory * stride), run.scratchBuffer(memory * stride)] : undefined;
  const slot = (index: number) => run.slot(state, index);
  const uColumns = { buffer: factors, offset: 0, size: memory * stride * 4 };
  const vtRows = { buffer: factors, offset: memory * stride * 4, size: memory * stride * 4 };

  /** Bind groups of one kernel for both parities (cur = t mod 2), made once. */
  const byParity = (make: (cur: number) => GPUBindGroup): GPUBindGroup[] => [make(0), make(1)];
  const k = (name: Parameters<typeof run.kernel>[0]) => run.kernel(name);
  const layout = (cur: number) => ({ n, groups: reduceGroups, stride, cur, memory });

  const stepGroups = byParity((cur) =>
    k('broydenStep').bind({ ctrl: run.ctrl, params: run.params('broydenStep', { n, groups: elementGroups, stride, cur }), update, state }),
  );
  const finalizeGroup = (cur: number, applyStep: boolean) =>
    k('broydenFinalize').bind({
      ctrl: run.ctrl,
      params: run.params('broydenFinalize', { n, groups: reduceGroups, stride, cur, apply_step: applyStep ? 1 : 0 }),
      update, fx, state, partials: run.partials,
    });
  const finalizeGroups = byParity((cur) => finalizeGroup(cur, opts.ls));
  const dotsGroups = byParity((cur) =>
    k('broydenDots').bind({ ctrl: run.ctrl, params: run.params('broydenDots', layout(cur)), state, factors, partials: dotPartials, update }),
  );
  const coefGroup = k('broydenCoef').bind({
    ctrl: run.ctrl, params: run.params('broydenCoef', { groups: reduceGroups, memory }), partials: dotPartials, coef,
  });
  const rankOneGroups = byParity((cur) =>
    k('broydenRankOne').bind({
      ctrl: run.ctrl, params: run.params('broydenRankOne', layout(cur)), coef, state, factors, vw, partials: run.partials, update,
    }),
  );
  const updateGroups = byParity((cur) =>
    k('broydenUpdate').bind({
      ctrl: run.ctrl, params: run.params('broydenUpdate', layout(cur)), coef, state, vw, partials: run.partials, factors, update,
    }),
  );
  const lineSearchGroup = k('lineSearch').bind({
    ctrl: run.ctrl, params: run.params('lineSearch', { groups: reduceGroups }), partials: run.partials,
  });

  /** x_new = x + s·update, then f(x_new) into fx. */
  const trialPoint = (pass: GPUComputePassEncoder, cur: number) => {
    k('broydenStep').dispatch(pass, stepGroups[cur], elementGroups);
    run.evaluate(pass, slot(1 - cur), fx);
  };

  const snapshot = await run.run(
    (encoder) => {
      run.encodeStart(encoder, state); // x0 in slot 0
      encoder.clearBuffer(factors);
      for (const buffer of bestFactors ?? []) encoder.clearBuffer(buffer);
      const pass = encoder.beginComputePass();
      run.evaluate(pass, slot(0), fx);
      k('broydenFinalize').dispatch(pass, finalizeGroup(1, false), reduceGroups); // g0 = f(x0) − x0 into slot 2
      run.finish(pass, FinishMode.broydenFirst);
      run.commit(pass, slot(0), slot(0));
      pass.end();
      encoder.copyBufferToBuffer(state, 2 * stride * 4, update, 0, n * 4); // first direction: update = g0
    },
    (pass, t) => {
      const cur = t % 2;
      if (opts.ls) {
        for (let e = 0; e < LINE_SEARCH_EVALS; e++) {
          trialPoint(pass, cur);
          run.residual(pass, slot(1 - cur), fx, true);
          k('lineSearch').dispatch(pass, lineSearchGroup, 1);
        }
      } else {
        trialPoint(pass, cur);
      }
      k('broydenFinalize').dispatch(pass, finalizeGroups[cur], reduceGroups);
      run.finish(pass, FinishMode.broyden);
      run.commit(pass, slot(1 - cur), slot(cur));
      if (bestFactors) run.commitInto(pass, uColumns, vtRows, bestFactors[0], bestFactors[1], memory * stride);
      k('broydenDots').dispatch(pass, dotsGroups[cur], reduceGroups, Math.min(t, memory) + 1);
      k('broydenCoef').dispatch(pass, coefGroup, 1);
      k('broydenRankOne').dispatch(pass, rankOneGroups[cur], reduceGroups);
      k('broydenUpdate').dispatch(pass, updateGroups[cur], reduceGroups);
    },
    0,
    opts.maxDepth,
  );

  let factorsOut: BroydenFactors | undefined;
  if (bestFactors) {
    const transpose = k('transpose');
    const Us = engine.allocate(n * memory * 4, 'options.lbfgsThres');
    const VTs = engine.allocate(n * memory * 4, 'options.lbfgsThres');
    const copied = engine.submitPass('broyden', (pass) => {
      const copy = (src: GPUBuffer, dst: GPUBuffer, transposed: number) => {
        const params = run.params('transpose', { n, memory, stride, transpose: transposed });
        transpose.dispatch(pass, transpose.bind({ params, src, dst }), Math.min(65535, Math.ceil(n / 64)), memory);
      };
      copy(bestFactors[0], Us, 1);
      copy(bestFactors[1], VTs, 0);
    });
    try {
      await copied;
    } catch (err) {
      engine.releaseBuffer(Us);
      engine.releaseBuffer(VTs);
      throw err;
    }
    factorsOut = {
      Us: new Tensor(engine, Us, [n, memory], true),
      VTs: new Tensor(engine, VTs, [memory, n], true),
      validMask: Array.from({ length: memory }, (_, j) => j < snapshot.bestNValid),
    };
  }
  return run.result(snapshot, factorsOut);
}
