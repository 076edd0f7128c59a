/**
 * Anderson acceleration with a ring of m + 1 history slots (x_j, f(x_j)).
 *
 * Per iteration: the new Gram row, the small regularised solve for α, the mixing
 * u' = (1 − β)Σα_j x_j + βΣα_j f(x_j) written straight into the next slot, and one evaluation
 * f(u'), which is both this iteration's residual and the next iteration's history entry (the
 * original evaluates it twice and counts both, so tnstep += 2). As dispatches: the step kernel
 * (shaders/anderson_step.wgsl: the iteration before's end, the Gram row, α and the mix), the
 * evaluation, and its measurement (residual and Gram-row partial sums, shaders/anderson_measure.wgsl)
 * — or, for a dense layer, the evaluation and measurement as one kernel (shaders/anderson_dense_step.wgsl);
 * for a split-k product the step with the mix as the split product's operand
 * (shaders/anderson_split_step.wgsl), then the combine and measurement (anderson_split_measure.wgsl);
 * for a layer of kernels ending in such a product, a normalisation or a convolution
 * (`fusedStageTail`: shaders/anderson_norm_measure.wgsl, anderson_conv_measure.wgsl), the step,
 * the kernels before it, then it measuring.
 */
import type { ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { andersonPerSample } from './per-sample';
import { solve } from './program';
import { NO_STAGE, STAGE_STEP_THREADS, stageStep } from './stage-tail';
import { FinishMode, type Plan, type SolveRun } from './run';
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

/** @internal The solve's ring schedule and its GPU table (lib/anderson_ring.wgsl), in a scratch buffer of `run`. */
export function uploadRing(run: SolveRun, slots: number): { schedule: ReturnType<typeof ringSchedule>; ring: GPUBuffer } {
  // One entry past the last iteration: its measurement reads the slot the next entry names.
  const schedule = ringSchedule(slots, run.opts.restarting, run.opts.maxDepth + 1);
  // Header (prefix, period) then the entries: lib/anderson_ring.wgsl reads it the same way.
  const ring = run.scratchBuffer(4 * (schedule.entries.length + 1));
  const table = new Uint32Array(4 * (schedule.entries.length + 1));
  table.set([schedule.prefix, schedule.period, 0, 0], 0);
  schedule.entries.forEach((e, t) => table.set([e.p, e.len, e.restart ? 1 : 0, e.q], 4 * (t + 1)));
  run.engine.device.queue.writeBuffer(ring, 0, table);
  return { schedule, ring };
}

/** Finds u* = f(u*, Qd) by Anderson acceleration. See {@link SolverOptions}. */
export function anderson(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  return solve('anderson', f, Qd, options, ['andersonGram', 'andersonMeasure'], andersonPlan, (run) => {
    const { schedule, ring } = uploadRing(run, run.opts.windowSize + 1);
    return andersonPerSample(run, ring, (t) => ringEntry(schedule, t).q);
  });
}

/** What an Anderson solve builds before iterating (see Plan). */
async function andersonPlan(run: SolveRun): Promise<Plan> {
  const f = run.layer;
  const { n, stride, reduceGroups, opts } = run;
  const slots = opts.windowSize + 1;
  const fused = run.fusedPath(true);
  // A layer with kernels before its product: those, then the product with the measurement.
  const prefix = fused?.prefix;
  const denseShader = prefix ? 'andersonPrefixStep' : 'andersonDenseStep';
  // A split-k product: the step mixes inside the split product, the measurement combines
  // (anderson_split_step.wgsl, anderson_split_measure.wgsl); otherwise the evaluation measures itself.
  // Not on a CPU adapter, where the split steps measured slower than the generic kernels.
  const splitPath = fused?.product?.split && !prefix && !run.engine.cpuAdapter ? run.denseProduct(fused, 'andersonSplitStep', 'step') : null;
  const product = splitPath ? null : run.denseProduct(fused, denseShader, 'measure');
  // A layer ending in a normalisation or a convolution (after kernels of its own, or alone): those,
  // then that kernel with the measurement (anderson_norm_measure.wgsl, anderson_conv_measure.wgsl).
  const tailShaders = { norm: 'andersonNormMeasure', conv: 'andersonConvMeasure' } as const;
  const tail = fused ? null : run.stageTail(tailShaders);
  const tailStep = tail ? stageStep(run, tail, tailShaders) : null;
  // α's workgroup arrays sized for this window (lib/anderson_alpha.wgsl ALPHA_SLOTS).
  const alphaSlots = { ALPHA_SLOTS: slots };
  await run.addKernel('andersonSolve', alphaSlots);
  await run.addKernel('andersonStep', alphaSlots);
  if (fused && product) {
    await run.addKernel(denseShader, { ...fused.constants, ...product.constants, REDUCE_SIZE: product.threads }, `measure_${product.body}_main`);
  }
  if (tail && tailStep) await run.addKernel(tailStep.shader, { ...tailStep.constants, WHOLE_LAYER: tail.prefix ? 0 : 1 });
  if (fused && splitPath) {
    // The step has no epilogue (the measurement runs it): only the product's constants.
    await run.addKernel('andersonSplitStep', { ...splitPath.constants, ...alphaSlots, REDUCE_SIZE: splitPath.threads }, `step_${splitPath.body}_main`);
    await run.addKernel('andersonSplitMeasure', fused.constants);
  }
  const xs = run.scratchBuffer(slots * stride);
  const fxs = run.scratchBuffer(slots * stride);
  const gram = run.scratchBuffer(slots * slots);
  const alpha = run.scratchBuffer(slots);
  const gramPartials = run.scratchBuffer(4 * reduceGroups * Math.ceil(slots / 4)); // four dots per vec4
  const { schedule, ring } = uploadRing(run, slots);

  // The measurement's partials per workgroup (the dense kernel's on a CPU adapter: per thread,
  // SolveRun.threadSums): the residual sums, then the Gram row's dots in fours.
  const chunks = 1 + Math.ceil(slots / 4);
  const generic = run.stepGroups();
  const threadSums = (product !== null || tail !== null) && run.threadSums;
  const [tx, ty] = tailStep?.grid ?? [0, 0];
  const measureParts = product
    ? product.groups[0] * product.groups[1] * (threadSums ? product.threads : 1)
    : tail ? tx * ty * (threadSums ? STAGE_STEP_THREADS : 1) : generic;
  const steps = run.stepState(chunks * Math.max(measureParts, generic));
  const sumsFlag = { thread_sums: threadSums ? 1 : 0 };

  // The start (once): u1 = f(u0) measured by the separate kernels, G[0][0], then f(u1) and its measurement.
  const gramKernel = run.kernel('andersonGram');
  const gramGroup = gramKernel.bind({
    ctrl: run.ctrl, params: run.params('andersonGram', { n, stride, groups: reduceGroups }), ring, x_ring: xs, fx_ring: fxs, partials: gramPartials,
  });
  const solveKernel = run.kernel('andersonSolve');
  const solveGroup = solveKernel.bind({
    ctrl: run.ctrl, params: run.params('andersonSolve', { groups: reduceGroups, slots, reg: opts.reg }), ring, partials: gramPartials, gram, alpha,
  });
  // Per iteration: the step (measure, decide, commit, G, α, mix), the evaluation, its measurement.
  const stepKernel = run.kernel('andersonStep');
  const stepGroups = [0, 1].map((t) =>
    stepKernel.bind({
      ctrl: run.ctrl, ctrl_b: steps.ctrlB, step_partials: steps.partials, best_u: run.bestU, best_prev: run.bestPrev,
      params: run.params('andersonStep', { ...run.stepRules(FinishMode.anderson, t, measureParts), stride, slots, reg: opts.reg, beta: opts.mixingParam, ...sumsFlag }),
      ring, x_ring: xs, fx_ring: fxs, gram,
    }),
  );
  const d = run.layer.featureSize;
  const measureShader = product ? denseShader : tailStep ? tailStep.shader : 'andersonMeasure';
  const measureKernel = run.kernel(measureShader);
  /** The measurement after iteration t's evaluation (t = 0: the start's f(u1), which the first step reads). */
  const measureGroup = (t: number, ahead: number) =>
    measureKernel.bind({
      ctrl: t === 0 ? run.ctrl : run.header(t + 1),
      params: run.params(measureShader, {
        m: product ? run.batch : 0, n: product ? d : 0, k: product ? (prefix?.size ?? d) : 0, state_size: n, stride, slots,
        partial_out: run.stepRules(FinishMode.anderson, t, 0).partial_out, ahead, splits: 0, ...sumsFlag, ...(tailStep?.members ?? NO_STAGE),
      }),
      ring, x_ring: xs, fx_ring: fxs, gram, step_partials: steps.partials,
      ...(fused && product ? { weight: fused.weight, weight4: fused.weight, bias: fused.bias, epi_qd: run.qdBuffer, ...(prefix ? { product_a: prefix.output } : {}) } : {}),
      // product_a: the prefix's output, or (the stage alone: WHOLE_LAYER) a read-only buffer never read.
      ...(tail && tailStep ? { ...tailStep.operands, epi_qd: run.qdBuffer, product_a: tail.prefix?.output ?? run.qdBuffer } : {}),
    });
  const startMeasure = measureGroup(0, 0);
  const iterationMeasures = [measureGroup(0, 1), measureGroup(1, 1)];
  // The ring's slots as regions, made once (the iterations evaluate them by index).
  const xSlots = Array.from({ length: slots }, (_, j) => run.slot(xs, j));
  const fxSlots = Array.from({ length: slots }, (_, j) => run.slot(fxs, j));
  const x = (slot: number) => xSlots[slot];
  const fx = (slot: number) => fxSlots[slot];
  /** Evaluates slot `slot` (and measures it): the dense kernel, or the layer's kernels then the measurement. */
  const evaluateAndMeasure = (pass: GPUComputePassEncoder, slot: number, group: GPUBindGroup, gate: GPUBuffer, replayKey?: number) => {
    if (product) {
      if (prefix) run.evaluatePrefix(pass, prefix, x(slot), gate, replayKey);
      measureKernel.dispatch(pass, group, product.groups[0], product.groups[1]);
    } else if (tail) {
      if (tail.prefix) run.evaluatePrefix(pass, tail.prefix, x(slot), gate, replayKey);
      measureKernel.dispatch(pass, group, tx, ty);
    } else {
      run.evaluate(pass, x(slot), fx(slot), gate, replayKey);
      measureKernel.dispatch(pass, group, generic);
    }
  };
  let last = 0;
  const step = (pass: GPUComputePassEncoder, t: number) => {
    stepKernel.dispatch(pass, stepGroups[t % 2], steps.groups);
    last = t;
  };
  let iterate = (pass: GPUComputePassEncoder, t: number) => {
    step(pass, t); // x[q] = u'
    const { q } = ringEntry(schedule, t);
    // Replayed by (slot, gate): the gate alternates with t.
    evaluateAndMeasure(pass, q, iterationMeasures[t % 2], run.header(t + 1), 2 * q + ((t + 1) % 2));
  };
  if (fused && splitPath?.split) {
    const { splits, chunk } = splitPath.split;
    const partials = run.scratchBuffer(splits * n);
    const mixed = run.scratchBuffer(n);
    const sizes = { m: run.batch, n: d, k: d };
    const splitStep = run.kernel('andersonSplitStep');
    const splitStepGroups = [0, 1].map((t) =>
      splitStep.bind({
        ctrl: run.ctrl, ctrl_b: steps.ctrlB, step_partials: steps.partials, best_u: run.bestU, best_prev: run.bestPrev,
        params: run.params('andersonSplitStep', {
          ...run.stepRules(FinishMode.anderson, t, measureParts), stride, slots, reg: opts.reg, beta: opts.mixingParam, ...sizes, chunk, splits,
        }),
        ring, x_ring: xs, fx_ring: fxs, gram, weight: fused.weight, weight4: fused.weight, gemm_partial: partials, mixed,
      }),
    );
    const splitMeasure = run.kernel('andersonSplitMeasure');
    const splitMeasureGroups = [0, 1].map((t) =>
      splitMeasure.bind({
        ctrl: run.header(t + 1),
        params: run.params('andersonSplitMeasure', {
          ...sizes, state_size: n, stride, slots, partial_out: run.stepRules(FinishMode.anderson, t, 0).partial_out, ahead: 1, splits, thread_sums: 0, ...NO_STAGE,
        }),
        ring, x_ring: xs, fx_ring: fxs, gram, step_partials: steps.partials, bias: fused.bias, epi_qd: run.qdBuffer, gemm_partial: partials, mixed,
      }),
    );
    const [gx, gy, gz] = splitPath.groups;
    iterate = (pass, t) => {
      splitStep.dispatch(pass, splitStepGroups[t % 2], gx, gy, gz);
      last = t;
      splitMeasure.dispatch(pass, splitMeasureGroups[t % 2], generic);
    };
  }

  return {
    init: (encoder) => {
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
      // The first iteration's f(u1) and its Gram row, for the first step (which also counts this
      // evaluation: no finish measures it).
      evaluateAndMeasure(pass, 1, startMeasure, run.ctrl);
      pass.end();
    },
    iterate,
    first: 1,
    end: opts.maxDepth,
    hooks: { start: (encoder) => run.encodeStart(encoder, xs), tail: step, close: (encoder) => run.closeSteps(encoder, last) },
  };
}
