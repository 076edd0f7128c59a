/**
 * Per-sample convergence (`convergence: 'per-sample'`) for all three solvers: every row of a
 * `[batch, d]` state keeps its own control header (residual, stop test, best-so-far, counts), runs
 * the batch mode's end-of-iteration rules on its own d values, and freezes once it stops; the
 * solve ends when all rows have stopped. Its own code path, beside the batch mode's fused steps:
 * per evaluation, the per-row measurement (shaders/rows_measure.wgsl, one workgroup per row), then
 * the gathering of the rows into the solve's control header (shaders/rows_finish.wgsl), which the
 * layers' gate and the CPU's chunked readbacks read as in the batch mode. Anderson mixes each
 * row with its own history and α first (shaders/rows_mix.wgsl); Broyden runs its whole iteration
 * per row in one kernel (shaders/rows_broyden.wgsl), measurement included.
 * Rows run in lockstep until they stop, so a row still running is at iteration t: the CPU picks
 * the ring slot that iteration t evaluates, and a frozen row's slots are simply no longer read.
 */
import { BufferUsage } from '../gpu/flags';
import { STORAGE_USAGE } from '../gpu/pool';
import { wgslConstant } from '../gpu/shaders';
import type { PerSampleStats, SolveResult, SolveStatus } from '../results';
import { LimitError } from '../errors';
import { CONTROL_HEADER_BYTES, CONTROL_HEADER_SIZE, decodeControl, type ControlSnapshot } from './control';
import { FinishMode, type SolveRun } from './run';
import type { Kernel } from '../gpu/kernel';

/** Phases of shaders/rows_measure.wgsl. */
const Phase = {
  picard: wgslConstant('rowsMeasure', 'PHASE_PICARD', 'u32'),
  andersonFirst: wgslConstant('rowsMeasure', 'PHASE_ANDERSON_FIRST', 'u32'),
  andersonDots: wgslConstant('rowsMeasure', 'PHASE_ANDERSON_DOTS', 'u32'),
  anderson: wgslConstant('rowsMeasure', 'PHASE_ANDERSON', 'u32'),
} as const;

/** Dots per row that rows_measure.wgsl leaves for rows_mix.wgsl (MAX_SLOTS of lib/anderson_ring.wgsl). */
const MAX_SLOTS = wgslConstant('rowsMeasure', 'MAX_SLOTS', 'u32');

/** The buffers and kernels that both solvers' per-sample paths share. */
interface Rows {
  /** One ControlHeader per row. */
  headers: GPUBuffer;
  /**
   * The rows still going (lib/rows_active.wgsl): the indirect dispatch of the per-row kernels, then
   * the rows' indices.
   */
  active: GPUBuffer;
  /** A per-row kernel's dispatch: one workgroup per row still going. */
  perRow(pass: GPUComputePassEncoder, kernel: Kernel, group: GPUBindGroup): void;
  /** The rows_measure dispatch of `phase` (and finish `mode`) over iterates in `x`, `y`. */
  measure(pass: GPUComputePassEncoder, group: GPUBindGroup): void;
  bindMeasure(phase: number, mode: number, x: GPUBuffer, y: GPUBuffer, extra: { ring: GPUBuffer; gram: GPUBuffer }): GPUBindGroup;
  /** Gathers the rows into ctrl after an evaluation (`record`: with a trace entry). */
  gather(pass: GPUComputePassEncoder, record?: boolean): void;
}

/** The uniform of rows_measure and rows_broyden (lib/rows_params.wgsl): the finish rules, then `members`. */
function rowsParams(run: SolveRun, members: { mode?: number; phase?: number; first?: number; cur?: number }): Record<string, number> {
  const { mode = 0, phase = 0, first = 0, cur = 0 } = members;
  const own = { mode, phase, first, cur, d: run.layer.featureSize, stride: run.stride, slots: run.opts.windowSize + 1, batch: run.batch };
  // Rows record no trace (rows_finish.wgsl does, for the solve).
  return { ...run.finishRules(), trace_cap: 0, ...own };
}

async function rowsOf(run: SolveRun): Promise<Rows> {
  const most = run.engine.device.limits.maxComputeWorkgroupsPerDimension;
  if (run.batch > most) {
    // Hand the solve's buffers back first: nothing was submitted yet.
    run.result(decodeControl(new ArrayBuffer(CONTROL_HEADER_BYTES))).dispose();
    throw new LimitError('Qd', `convergence: 'per-sample' runs a workgroup per row: at most ${most} rows on this device, got ${run.batch}`);
  }
  await run.addKernel('rowsMeasure', {});
  await run.addKernel('rowsFinish', {});
  const { batch } = run;
  const headers = run.scratchBuffer((batch * CONTROL_HEADER_SIZE) / 4);
  // The indirect arguments (a vec3; the row list follows it at byte 12, WGSL's layout of
  // RowsActive) and the row list; at first every row.
  const active = run.scratchBuffer(3 + batch, STORAGE_USAGE | BufferUsage.INDIRECT);
  const list = new Uint32Array(3 + batch);
  list.set([batch, 1, 1], 0);
  for (let r = 0; r < batch; r++) list[3 + r] = r;
  run.engine.device.queue.writeBuffer(active, 0, list);
  const measureKernel = run.kernel('rowsMeasure');
  const finishKernel = run.kernel('rowsFinish');
  const rules = run.finishRules();
  const gatherGroups = [0, 1].map((record) =>
    finishKernel.bind({ ctrl: run.ctrl, params: run.params('rowsFinish', { batch, trace_cap: record ? rules.trace_cap : 0 }), rows: headers, going_rows: active }),
  );
  return {
    headers,
    active,
    perRow: (pass, kernel, group) => kernel.dispatchIndirect(pass, group, active),
    measure: (pass, group) => measureKernel.dispatchIndirect(pass, group, active),
    bindMeasure: (phase, mode, x, y, extra) =>
      measureKernel.bind({
        ctrl: run.ctrl,
        params: run.params('rowsMeasure', rowsParams(run, { mode, phase })),
        rows: headers, x, y, best_u: run.bestU, best_prev: run.bestPrev, going_rows: active, ...extra,
      }),
    gather: (pass, record = true) => finishKernel.dispatch(pass, gatherGroups[record ? 1 : 0], 1),
  };
}

/** Picard with per-sample convergence (see SolverOptions.convergence). */
export async function picardPerSample(run: SolveRun): Promise<SolveResult> {
  const rows = await rowsOf(run);
  // Two iterates: evaluation t reads slots[t % 2] and writes the other one.
  const slots = [run.scratchBuffer(run.n), run.scratchBuffer(run.n)];
  // rows_measure's Anderson bindings, unused by the Picard phase.
  const unused = { ring: run.scratchBuffer(8), gram: run.scratchBuffer(1) };
  const first = rows.bindMeasure(Phase.picard, FinishMode.picardFirst, slots[0], slots[1], unused);
  const groups = [0, 1].map((t) => rows.bindMeasure(Phase.picard, FinishMode.picard, slots[t], slots[1 - t], unused));
  const snapshot = await run.run(
    (encoder) => {
      encoder.clearBuffer(rows.headers);
      run.encodeStart(encoder, slots[0]);
      const pass = encoder.beginComputePass();
      run.evaluate(pass, slots[0], slots[1]); // u1 = f(u0)
      rows.measure(pass, first);
      rows.gather(pass);
      pass.end();
    },
    (pass, t) => {
      run.evaluate(pass, slots[t % 2], slots[(t + 1) % 2]);
      rows.measure(pass, groups[t % 2]);
      rows.gather(pass);
    },
    1,
    run.opts.maxDepth,
  );
  return perSampleResult(run, rows, snapshot);
}

/**
 * Anderson with per-sample convergence (see SolverOptions.convergence): `ring` is the schedule's
 * table (anderson.ts's uploadRing), `slotOf(t)` the slot q that iteration t mixes into.
 */
export async function andersonPerSample(run: SolveRun, ring: GPUBuffer, slotOf: (t: number) => number): Promise<SolveResult> {
  const rows = await rowsOf(run);
  const { batch, stride, opts } = run;
  const slots = opts.windowSize + 1;
  await run.addKernel('rowsMix', { ALPHA_SLOTS: slots }); // lib/anderson_alpha.wgsl's arrays: this window's
  const xs = run.scratchBuffer(slots * stride);
  const fxs = run.scratchBuffer(slots * stride);
  // The rows' Gram matrices, then their dots.
  const extra = { ring, gram: run.scratchBuffer(batch * slots * slots + batch * MAX_SLOTS) };
  const first = rows.bindMeasure(Phase.andersonFirst, FinishMode.andersonFirst, xs, fxs, extra);
  const dots = rows.bindMeasure(Phase.andersonDots, FinishMode.anderson, xs, fxs, extra);
  const measure = rows.bindMeasure(Phase.anderson, FinishMode.anderson, xs, fxs, extra);
  const mixKernel = run.kernel('rowsMix');
  const mix = mixKernel.bind({
    rows: rows.headers, params: run.params('rowsMix', { d: run.layer.featureSize, stride, slots, reg: opts.reg, beta: opts.mixingParam, batch }),
    ring, x_ring: xs, fx_ring: fxs, gram: extra.gram, going_rows: rows.active, ctrl: run.ctrl,
  });
  const snapshot = await run.run(
    (encoder) => {
      encoder.clearBuffer(rows.headers);
      run.encodeStart(encoder, xs);
      const pass = encoder.beginComputePass();
      run.evaluate(pass, run.slot(xs, 0), run.slot(fxs, 0)); // u1 = f(u0), into slot 0 (and x slot 1)
      rows.measure(pass, first);
      rows.gather(pass);
      // The first iteration's f(u1): history only (the Gram row of slot 1), not measured.
      run.evaluate(pass, run.slot(xs, 1), run.slot(fxs, 1));
      rows.measure(pass, dots);
      rows.gather(pass, false);
      pass.end();
    },
    (pass, t) => {
      rows.perRow(pass, mixKernel, mix); // x[q] = u' per row
      const q = slotOf(t);
      run.evaluate(pass, run.slot(xs, q), run.slot(fxs, q));
      rows.measure(pass, measure);
      rows.gather(pass);
    },
    1,
    opts.maxDepth,
  );
  return perSampleResult(run, rows, snapshot);
}

/**
 * Broyden with per-sample convergence, without line search (see SolverOptions.convergence): per
 * iteration the evaluation of the trial point and one kernel per row (shaders/rows_broyden.wgsl)
 * that measures it, keeps the row's best, updates the row's factors and writes its next trial point.
 */
export async function broydenPerSample(run: SolveRun): Promise<SolveResult> {
  const rows = await rowsOf(run);
  await run.addKernel('rowsBroyden', {});
  const { batch, stride, opts, n } = run;
  const memory = opts.lbfgsThres;
  // x_a, x_b, g_a, g_b, update, v, w (lib/broyden_state.wgsl's four, then rows_broyden.wgsl's).
  const state = run.scratchBuffer(7 * stride);
  // U, Vᵀ, then each row's dots (a vec4 per column).
  const factors = run.scratchBuffer(2 * memory * stride + 4 * batch * memory);
  const fx = run.scratchBuffer(n);
  const kernel = run.kernel('rowsBroyden');
  const group = (first: boolean, cur: number) =>
    kernel.bind({
      ctrl: run.ctrl, params: run.params('rowsBroyden', rowsParams(run, { first: first ? 1 : 0, cur })),
      rows: rows.headers, state, factors, fx, best_u: run.bestU, best_prev: run.bestPrev, going_rows: rows.active,
    });
  const start = group(true, 0);
  const steps = [group(false, 0), group(false, 1)];
  const snapshot = await run.run(
    (encoder) => {
      encoder.clearBuffer(rows.headers);
      run.encodeStart(encoder, state); // x0 in slot 0
      encoder.clearBuffer(factors);
      const pass = encoder.beginComputePass();
      run.evaluate(pass, run.slot(state, 0), fx);
      rows.perRow(pass, kernel, start); // g0, the start's measurement, update = g0, x0 + g0 into slot 1
      rows.gather(pass);
      pass.end();
    },
    (pass, t) => {
      const cur = t % 2;
      run.evaluate(pass, run.slot(state, 1 - cur), fx);
      rows.perRow(pass, kernel, steps[cur]);
      rows.gather(pass);
    },
    0,
    opts.maxDepth,
  );
  return perSampleResult(run, rows, snapshot);
}

/** Why one row stopped (the batch mode's rule, on the row's header). */
function statusOf(row: ControlSnapshot): SolveStatus {
  if (row.nonFinite) return 'nonFinite';
  if (row.converged) return 'converged';
  return row.stalled ? 'stalled' : 'maxDepth';
}

/** Reads the rows' headers, then hands out the result with stats.perSample. */
async function perSampleResult(run: SolveRun, rows: Rows, snapshot: ControlSnapshot): Promise<SolveResult> {
  const bytes = await run.engine.readBytes(rows.headers, run.batch * CONTROL_HEADER_SIZE, { what: run.solver });
  const headers = Array.from({ length: run.batch }, (_, r) => decodeControl(bytes.slice(r * CONTROL_HEADER_SIZE, (r + 1) * CONTROL_HEADER_SIZE)));
  const perSample: PerSampleStats = {
    nstep: headers.map((h) => h.nstep),
    absResidual: headers.map((h) => h.bestAbs),
    relResidual: headers.map((h) => h.bestRel),
    converged: headers.map((h) => h.converged && !h.nonFinite),
    status: headers.map(statusOf),
  };
  const result = run.result(snapshot);
  const { status } = perSample;
  const stats = result.stats;
  stats.status = status.every((s) => s === 'converged') ? 'converged'
    : status.includes('nonFinite') ? 'nonFinite' : status.includes('maxDepth') ? 'maxDepth' : 'stalled';
  stats.converged = stats.status === 'converged';
  stats.nonFinite = status.includes('nonFinite');
  stats.absResidual = Math.max(...perSample.absResidual);
  stats.relResidual = Math.max(...perSample.relResidual);
  stats.perSample = perSample;
  return result;
}
