/**
 * Anderson acceleration with a ring of m + 1 history slots (x_j, f(x_j)).
 *
 * Per iteration: the new Gram row, the small regularised solve for α, the mixing
 * u' = (1 − β)Σα_j x_j + βΣα_j f(x_j) written straight into the next slot, and one evaluation
 * f(u'), which is both this iteration's residual and the next iteration's history entry (the
 * original evaluates it twice and counts both, so tnstep += 2).
 */
import type { ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { FinishMode, SolveRun } from './run';
import type { SolveResult } from '../results';

/** Ring position of iteration t: slot p just written, valid length, restart, next slot q. */
export interface RingEntry {
  p: number;
  len: number;
  restart: boolean;
  q: number;
}

/**
 * The history bookkeeping depends only on t, so the CPU lays it out ahead of time. It is
 * periodic: the entry of iteration t ≥ 1 follows from the ring state (ptr, len) before it, and
 * there are at most slots² states, so from some `prefix` on the entries repeat with `period`.
 * Only iterations 0 .. prefix + period − 1 (and no more than maxDepth) are laid out; iteration t
 * reads {@link ringEntry}(t). The table is sized by the window, never by maxDepth.
 */
export function ringSchedule(slots: number, restarting: boolean, maxDepth: number): { entries: RingEntry[]; prefix: number; period: number } {
  const entries: RingEntry[] = [{ p: 0, len: 1, restart: false, q: 1 }];
  /** The iteration at which each ring state (before its entry) was first met. */
  const seen = new Map<number, number>();
  let ptr = 1;
  let len = 1;
  for (let t = 1; t < maxDepth; t++) {
    const state = ptr * (slots + 1) + len;
    const first = seen.get(state);
    if (first !== undefined) return { entries, prefix: first, period: t - first };
    seen.set(state, t);
    const p = ptr;
    ptr = (ptr + 1) % slots;
    len = Math.min(len + 1, slots);
    const restart = restarting && len === slots;
    entries.push({ p, len, restart, q: restart ? 1 : ptr });
    if (restart) {
      ptr = 1;
      len = 1;
    }
  }
  // maxDepth came first: every iteration has its own entry (prefix + period = entries.length).
  return { entries, prefix: entries.length - 1, period: 1 };
}

/** The entry of iteration t in a schedule laid out by {@link ringSchedule}. */
export function ringEntry(schedule: { entries: RingEntry[]; prefix: number; period: number }, t: number): RingEntry {
  const { entries, prefix, period } = schedule;
  return entries[t < prefix ? t : prefix + ((t - prefix) % period)];
}

/** Finds u* = f(u*, Qd) by Anderson acceleration. See {@link SolverOptions}. */
export async function anderson(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  const run = await SolveRun.start('anderson', f, Qd, options, ['andersonGram', 'andersonSolve', 'andersonMix']);
  const { n, stride, reduceGroups, elementGroups, opts } = run;
  const slots = opts.windowSize + 1;
  const xs = run.scratchBuffer(slots * stride);
  const fxs = run.scratchBuffer(slots * stride);
  const gram = run.scratchBuffer(slots * slots);
  const alpha = run.scratchBuffer(slots);
  const gramPartials = run.scratchBuffer(4 * reduceGroups * Math.ceil(slots / 4)); // four dots per vec4
  const schedule = ringSchedule(slots, opts.restarting, opts.maxDepth);
  // Header (prefix, period) then the entries: lib/anderson_ring.wgsl reads it the same way.
  const ring = run.scratchBuffer(4 * (schedule.entries.length + 1));
  const table = new Uint32Array(4 * (schedule.entries.length + 1));
  table.set([schedule.prefix, schedule.period, 0, 0], 0);
  schedule.entries.forEach((e, t) => table.set([e.p, e.len, e.restart ? 1 : 0, e.q], 4 * (t + 1)));
  run.engine.device.queue.writeBuffer(ring, 0, table);

  const gramKernel = run.kernel('andersonGram');
  const gramGroup = gramKernel.bind({
    ctrl: run.ctrl,
    params: run.params('andersonGram', { n, stride, groups: reduceGroups }),
    ring,
    x_ring: xs,
    fx_ring: fxs,
    partials: gramPartials,
  });
  const solveKernel = run.kernel('andersonSolve');
  const solveGroup = solveKernel.bind({
    ctrl: run.ctrl,
    params: run.params('andersonSolve', { groups: reduceGroups, slots, reg: opts.reg }),
    ring,
    partials: gramPartials,
    gram,
    alpha,
  });
  const mixKernel = run.kernel('andersonMix');
  const mixGroup = mixKernel.bind({
    ctrl: run.ctrl,
    params: run.params('andersonMix', { n, stride, groups: elementGroups, beta: opts.mixingParam }),
    ring,
    alpha,
    x_ring: xs,
    fx_ring: fxs,
  });
  const x = (slot: number) => run.slot(xs, slot);
  const fx = (slot: number) => run.slot(fxs, slot);

  const snapshot = await run.run(
    (encoder) => {
      run.encodeStart(encoder, xs);
      let pass = encoder.beginComputePass();
      run.evaluate(pass, x(0), fx(0)); // u1 = f(u0)
      // G[0][0] for the first mix (schedule[0] names slot 0 while ctrl.nstep is still 0; the α
      // this solve writes is never used).
      gramKernel.dispatch(pass, gramGroup, reduceGroups, 1);
      solveKernel.dispatch(pass, solveGroup, 1);
      run.residual(pass, x(0), fx(0));
      run.finish(pass, FinishMode.andersonFirst);
      run.commit(pass, fx(0), x(0));
      pass.end();
      encoder.copyBufferToBuffer(fxs, 0, xs, stride * 4, n * 4); // slot 1 holds u1
      pass = encoder.beginComputePass();
      run.evaluate(pass, x(1), fx(1)); // the first iteration's f(u1)
      run.countEvaluation(pass); // no finish measures f(u1): give the next evaluation a new index
      pass.end();
    },
    (pass, t) => {
      const { p, len, restart, q } = ringEntry(schedule, t);
      gramKernel.dispatch(pass, gramGroup, reduceGroups, Math.ceil(len / 4)); // four Gram entries per workgroup
      solveKernel.dispatch(pass, solveGroup, 1);
      mixKernel.dispatch(pass, mixGroup, elementGroups); // x[q] = u'
      run.evaluate(pass, x(q), fx(q));
      run.residual(pass, x(q), fx(q));
      run.finish(pass, FinishMode.anderson);
      run.commit(pass, x(q), x(restart ? 0 : p));
    },
    1,
    opts.maxDepth,
  );
  return run.result(snapshot);
}
