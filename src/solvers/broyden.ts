/**
 * Limited-memory Broyden on the flattened state (all batch rows together), B ≈ J_g⁻¹ kept as
 * B = −I + U Vᵀ with L rank-one columns in a ring.
 *
 * Per iteration: x' = x + s·update (Armijo line search optional), g' = f(x') − x', best-so-far,
 * then the rank-one update  vᵀ = Δxᵀ B,  u = (Δx − B Δg) / (vᵀΔg + 1e-9)  into column nstep mod L,
 * and the next direction update = −B g'. After the layer's evaluation an iteration is three
 * dispatches (one round of partial sums per global barrier): shaders/broyden_measure.wgsl (g' and
 * every dot product against the old factors), shaders/broyden_decide.wgsl (the measurement and
 * end-of-iteration rules, best-so-far, v and w) and shaders/broyden_advance.wgsl (u, the factor
 * columns, the next direction and the next trial point). The line search adds 8 × (trial point,
 * evaluation, residual sums, decision) and a finalize kernel. A dense layer that offers a fused
 * path (`fusedPicard`'s product) takes two from iteration 1 on: shaders/broyden_dense_step.wgsl
 * (the advance of the iteration before as its product's left operand, the measurement as its
 * epilogue), then the decide kernel; with the line search nine: eight dispatches of the dense
 * kernel, one per trial (the first as without it; each later one first takes the search's
 * decision on the trial before, lib/line_search.wgsl, and evaluates x + ls_eval_s·update unless
 * the search has finished; every one leaves what finalize and measure would, were it the last),
 * then the decide kernel, which takes the decision on the eighth trial first. Where the layer's
 * plan splits k across workgroups (few rows on a GPU), the dense kernel takes the product's
 * `whole` body instead (lib/gemm_slices.wgsl: k split inside each workgroup), so the counts stay
 * two and nine; on a device that cannot bind that kernel, a split-k product (without the line
 * search) takes three: shaders/broyden_split_step.wgsl (the advance as the split product's
 * operand), broyden_split_measure.wgsl (the combine and the measurement), decide. A layer of k
 * kernels whose last is the fused product (`prefix`), without the line search, takes k + 1 when
 * its first kernel is a fused linear too (`prefix.head`): broyden_prefix_head.wgsl (that linear
 * with the advance of the iteration before as its operand), the prefix's other kernels,
 * broyden_prefix_step.wgsl (the product with the dense step's measuring epilogue), decide; or a
 * normalisation: broyden_prefix_norm_head.wgsl (it and its chain, each workgroup storing the
 * advance of its (row, group) before it reads it), then as before; or elementwise stages:
 * broyden_advance.wgsl's head_main (the advance, and those stages' chain on x_{t+1}); with any
 * other first kernel (or a device that cannot bind the head's buffers) k + 2: the k − 1 kernels
 * at the point the advance kernel stored, broyden_prefix_step.wgsl, decide, advance. A layer of k
 * kernels ending in a normalisation or a convolution (`fusedStageTail`, without the line search)
 * takes k + 2 too: the kernels before it, broyden_norm_step.wgsl or broyden_conv_step.wgsl (that
 * kernel measuring), decide, advance; k + 1 with
 * a head as above in place of the advance kernel. Iterate and residual pairs alternate between
 * the slots of one state buffer by parity.
 */
import type { BufferRegion } from '../gpu/kernel';
import { wgslConstant } from '../gpu/shaders';
import type { FusedPrefix, ImplicitLayer } from '../layers/layer';
import { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { CONTROL_HEADER_SIZE, type ControlSnapshot } from './control';
import { broydenPerSample } from './per-sample';
import { solve } from './program';
import { STAGE_STEP_THREADS, stageMembers, stageStep } from './stage-tail';
import { FinishMode, type Plan, type RunHooks, type SolveRun } from './run';
import type { BroydenFactors, SolveResult } from '../results';

/** Entries of `sums` before its partial sums: the solve's layout (lib/broyden_state.wgsl). */
const SUMS_LAYOUT = wgslConstant('broydenDecide', 'SUMS_LAYOUT', 'u32');

/** Threads of the decide kernel's workgroups: the entries each leaves in the rank-one row with thread sums. */
const DECIDE_THREADS = wgslConstant('broydenDecide', 'REDUCE_SIZE', 'u32');

/** Evaluations the line search may need: s = 1, the quadratic step, and at most 6 halvings to 0.01 (lib/line_search.wgsl). */
const LINE_SEARCH_EVALS = wgslConstant('lineSearch', 'LINE_SEARCH_EVALS', 'u32');

/** Finds u* = f(u*, Qd) by limited-memory Broyden. See {@link SolverOptions}. */
export function broyden(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  const kernels = ['broydenStep', 'broydenFinalize', 'broydenMeasure', 'broydenAdvance', 'lineSearch', 'transpose'] as const;
  return solve('broyden', f, Qd, options, kernels, broydenPlan, broydenPerSample);
}

/** What a Broyden solve builds before iterating (see Plan). */
async function broydenPlan(run: SolveRun): Promise<Plan> {
  const f = run.layer;
  const { n, stride, reduceGroups, elementGroups, opts, engine } = run;
  // The measure, decide and advance kernels' workgroups: few on a CPU adapter, where each
  // workgroup's reductions cost more than its share of the elements (SolveRun.stepGroups).
  const groups = run.stepGroups();
  const memory = opts.lbfgsThres;
  // The decide kernel's coefficient cache holds this memory's columns (at most its threads').
  await run.addKernel('broydenDecide', { COEF_COLUMNS: Math.min(DECIDE_THREADS, memory) });
  // A layer with kernels before its product (without the line search, whose trials would each
  // run them): those, then the product with the measurement (broyden_prefix_step.wgsl).
  const fusedPath = run.fusedPath(!opts.ls);
  const densePrefix = fusedPath?.prefix;
  const denseShader = densePrefix ? 'broydenPrefixStep' : 'broydenDenseStep';
  // The dense step measures in its product's epilogue, so it takes a body that finishes each
  // output inside one workgroup: where the layer's plan splits k across workgroups, the one that
  // splits it inside each (FusedProduct.whole).
  const whole = fusedPath?.product?.whole;
  const product = run.denseProduct(whole && fusedPath ? { ...fusedPath, product: whole } : fusedPath, denseShader, 'step');
  // Where the device cannot bind that kernel, a split-k product without the line search: the
  // advance inside the split product, then the measurement that combines
  // (broyden_split_step.wgsl, broyden_split_measure.wgsl), then decide.
  const splitPath = !product && !densePrefix && fusedPath?.product?.split && !opts.ls ? run.denseProduct(fusedPath, 'broydenSplitStep', 'step') : null;
  if (product) {
    await run.addKernel(denseShader, { ...fusedPath?.constants, ...product.constants, REDUCE_SIZE: product.threads }, `step_${product.body}_main`);
  }
  // A layer ending in a normalisation or a convolution (after kernels of its own, or alone), without
  // the line search: those, then that kernel measuring (broyden_norm_step.wgsl, broyden_conv_step.wgsl), decide.
  const tailShaders = { norm: 'broydenNormStep', conv: 'broydenConvStep' } as const;
  const tail = fusedPath || opts.ls ? null : run.stageTail(tailShaders);
  const tailStep = tail ? stageStep(run, tail, tailShaders) : null;
  if (tail && tailStep) await run.addKernel(tailStep.shader, { ...tailStep.constants, WHOLE_LAYER: tail.prefix ? 0 : 1 });
  // The kernels before the measuring one (the dense step's product, or the stage's).
  const prefix = densePrefix ?? tail?.prefix;
  // A prefix that begins with a fused linear: that linear with the advance as its product's
  // operand (broyden_prefix_head.wgsl), in place of the advance kernel; a body that finishes
  // each output in its workgroup, as for the dense step.
  const head = product || tail ? prefix?.head : undefined;
  const denseHead = head?.kind === 'dense' ? head : undefined;
  const headWhole = denseHead?.path.product?.whole;
  const headProduct = denseHead ? run.denseProduct(headWhole ? { ...denseHead.path, product: headWhole } : denseHead.path, 'broydenPrefixHead', 'head') : null;
  if (denseHead && headProduct) {
    await run.addKernel('broydenPrefixHead', { ...denseHead.path.constants, ...headProduct.constants, REDUCE_SIZE: headProduct.threads }, `head_${headProduct.body}_main`);
  }
  // A prefix that begins with a normalisation: it, on the advance computed per element
  // (broyden_prefix_norm_head.wgsl), where the device binds its storage buffers (and on a CPU
  // adapter for few (row, group) workgroups: each sums the rank-one partials first).
  const normGrid = head?.kind === 'norm' ? head.norm.grid : [0, 0];
  const normHead = head?.kind === 'norm' && run.binds('broydenPrefixNormHead') && run.fewGroups(normGrid[0] * normGrid[1]) ? head : undefined;
  if (normHead) await run.addKernel('broydenPrefixNormHead', normHead.norm.constants);
  // A prefix that begins with elementwise stages: the advance kernel's head_main applies them.
  const pointwiseHead = head?.kind === 'pointwise' ? head : undefined;
  const pointwiseKernel = pointwiseHead ? await run.entryKernel('broydenAdvance', pointwiseHead.constants, 'head_main') : null;
  if (splitPath && fusedPath) {
    await run.addKernel('broydenSplitStep', { ...splitPath.constants, REDUCE_SIZE: splitPath.threads }, `step_${splitPath.body}_main`);
    await run.addKernel('broydenSplitMeasure', fusedPath.constants);
  }
  const denseGroups = product ? product.groups[0] * product.groups[1] : 0;
  // On a CPU adapter the dense step and the decide kernel leave one partial sum per thread
  // (SolveRun.threadSums; the generic measure kernel keeps its trees: one per workgroup).
  const threadSums = run.threadSums;
  const rankParts = groups * (threadSums ? DECIDE_THREADS : 1);
  const [tx, ty] = tailStep?.grid ?? [0, 0];
  const denseParts = product ? denseGroups * (threadSums ? product.threads : 1) : tailStep ? tx * ty * (threadSums ? STAGE_STEP_THREADS : 1) : 0;
  // Entries per row of `sums`: one per workgroup (or thread) of the kernel that measures, and of the decide kernel.
  const rows = Math.max(groups, rankParts, denseParts);
  const sumsFlags = { rank_parts: rankParts, thread_sums: threadSums ? 1 : 0 };
  const state = run.scratchBuffer(4 * stride); // x_a, x_b, g_a, g_b
  const factors = run.scratchBuffer(2 * memory * stride); // U columns, then Vᵀ rows
  const aux = run.scratchBuffer(4 * stride); // update, v, w, fx
  // The measure kernel's rows, the decide kernel's rank-one sums, the coefficients, the dense
  // trials' two rows of φ partials (lib/broyden_state.wgsl).
  const sums = run.scratchBuffer(4 * (SUMS_LAYOUT + (memory + 2) * rows + memory + 2 * rows));
  const bestFactors = opts.returnB ? run.scratchBuffer(2 * memory * stride) : undefined;
  const { ctrlB } = run.stepState();
  // The state's four slots as regions, made once.
  const slots = [0, 1, 2, 3].map((index) => run.slot(state, index));
  const slot = (index: number) => slots[index];
  const update = run.slot(aux, 0);
  const fx = run.slot(aux, 3);
  const half = memory * stride * 4;

  /** Bind groups (or lists of them) of one kernel for both parities (cur = t mod 2), made once. */
  const byParity = <T>(make: (cur: number) => T): T[] => [make(0), make(1)];
  const k = (name: Parameters<typeof run.kernel>[0]) => run.kernel(name);
  const layout = (cur: number) => ({ n, groups, rows, stride, cur, memory });

  const stepGroups = byParity((cur) =>
    k('broydenStep').bind({ ctrl: run.ctrl, params: run.params('broydenStep', { n, groups: elementGroups, stride, cur }), update, state }),
  );
  const finalizeGroup = (cur: number, applyStep: boolean) =>
    k('broydenFinalize').bind({
      ctrl: run.ctrl,
      params: run.params('broydenFinalize', { n, groups: reduceGroups, stride, cur, apply_step: applyStep ? 1 : 0 }),
      update, fx, state, partials: run.partials,
    });
  const finalizeGroups = byParity((cur) => finalizeGroup(cur, true));
  const firstFinalize = finalizeGroup(1, false);
  const measureGroups = byParity((cur) =>
    k('broydenMeasure').bind({
      ctrl: run.ctrl, params: run.params('broydenMeasure', { ...layout(cur), from_state: opts.ls ? 1 : 0, splits: 0, features: 0 }), state, factors, aux, sums,
    }),
  );
  // The decide kernel's uniform is the finish kernel's (its rules, MODE_BROYDEN), its layout the
  // first entries of `sums`: a solve adds the same uniform buffers as one with finish kernels.
  const decideGroup = k('broydenDecide').bind({
    ctrl: run.ctrl, ctrl_b: ctrlB, params: run.params('finish', { ...run.finishRules(), groups, mode: FinishMode.broyden }),
    sums, state, factors, aux, best_u: run.bestU, best_prev: run.bestPrev, best_factors: bestFactors ?? run.partials, // unused without returnB
  });
  const advanceGroups = byParity((cur) =>
    k('broydenAdvance').bind({ ctrl: run.ctrl, ctrl_b: ctrlB, params: run.params('broydenAdvance', { ...layout(cur), ...sumsFlags }), sums, state, factors, aux }),
  );
  const lineSearchGroup = k('lineSearch').bind({
    ctrl: run.ctrl, params: run.params('lineSearch', { groups: reduceGroups }), partials: run.partials,
  });

  /** The generic iteration: the layer's evaluation (after the line search's trials), then three kernels. */
  const genericIteration = (pass: GPUComputePassEncoder, t: number): void => {
    const cur = t % 2;
    if (opts.ls) {
      for (let e = 0; e < LINE_SEARCH_EVALS; e++) {
        k('broydenStep').dispatch(pass, stepGroups[cur], elementGroups);
        run.evaluate(pass, slot(1 - cur), fx, run.ctrl, cur);
        run.residual(pass, slot(1 - cur), fx, true);
        k('lineSearch').dispatch(pass, lineSearchGroup, 1);
      }
      k('broydenFinalize').dispatch(pass, finalizeGroups[cur], reduceGroups);
    } else {
      run.evaluate(pass, slot(1 - cur), fx, run.ctrl, cur); // at x' = x + update, written by the advance kernel before
    }
    k('broydenMeasure').dispatch(pass, measureGroups[cur], groups, Math.min(t, memory) + 1);
    k('broydenDecide').dispatch(pass, decideGroup, groups);
  };
  let iterate = (pass: GPUComputePassEncoder, t: number): void => {
    genericIteration(pass, t);
    k('broydenAdvance').dispatch(pass, advanceGroups[t % 2], groups);
  };
  let hooks: RunHooks = {};
  // The kernel that evaluates f's last kernel and measures, in iterations t ≥ 1, after the prefix:
  // the dense step (its trials), or the norm step.
  let measure: ((pass: GPUComputePassEncoder, cur: number) => void) | null = null;
  const d = f.featureSize;
  if (product && fusedPath) {
    // Iteration 0 as the generic one without its advance; from then on the dense kernel's trials
    // (trial 0: the advance of the iteration before, the evaluation at s = 1 and the measurement;
    // with the line search trials 1 … LINE_SEARCH_EVALS − 1, each taking the search's decision
    // on the trial before), then the decide kernel (with the line search, first the decision on
    // the last trial). The trials after the first alternate the two headers so that the last one
    // leaves it in ctrl.h, where the decide kernel reads it (which stores it in ctrl_b, where
    // the next trial 0 reads it).
    // A layer with a prefix: the advance kernel stays (the prefix reads the point it stores), the
    // prefix then the dense kernel's trial 0 (from the stored advance) measure, then decide.
    const dense = k(denseShader);
    const trials = opts.ls ? LINE_SEARCH_EVALS : 1;
    const denseBindings = byParity((cur) =>
      Array.from({ length: trials }, (_, trial) =>
        dense.bind({
          ctrl: run.ctrl, ctrl_b: ctrlB,
          params: run.params(denseShader, {
            ...sumsFlags, rows, stride, cur, memory, m: run.batch, n: d, k: densePrefix?.size ?? d, trial,
            header_in_b: trial > 0 && (trials - 1 - trial) % 2 === 0 ? 1 : 0, chunk: 0, splits: 0,
          }),
          sums, state, factors, aux, weight: fusedPath.weight, weight4: fusedPath.weight, bias: fusedPath.bias, epi_qd: run.qdBuffer,
          ...(densePrefix ? { product_a: densePrefix.output } : {}),
        }),
      ),
    );
    const [gx, gy] = product.groups;
    measure = (pass, cur) => {
      for (const binding of denseBindings[cur]) dense.dispatch(pass, binding, gx, gy);
    };
  } else if (tail && tailStep) {
    // The prefix at x_{t+1}, then the norm or the convolution measuring.
    const tailKernel = k(tailStep.shader);
    const tailBindings = byParity((cur) =>
      tailKernel.bind({
        ctrl: run.ctrl, ctrl_b: ctrlB, params: run.params(tailStep.shader, { ...sumsFlags, rows, stride, cur, memory, n, ...tailStep.members }),
        // product_a: the prefix's output, or (the stage alone: WHOLE_LAYER) a read-only buffer never read.
        sums, state, factors, aux, ...tailStep.operands, epi_qd: run.qdBuffer, product_a: tail.prefix?.output ?? run.qdBuffer,
      }),
    );
    measure = (pass, cur) => tailKernel.dispatch(pass, tailBindings[cur], tx, ty);
  }
  if (measure) {
    const measureStep = measure;
    // With the head: it, then the prefix's kernels after it (from its output), then the dense
    // kernel and decide; the advance kernel only without it.
    const headKernel = denseHead && headProduct ? k('broydenPrefixHead') : normHead ? k('broydenPrefixNormHead') : pointwiseKernel;
    const headBindings = denseHead && headKernel
      ? byParity((cur) =>
          headKernel.bind({
            ctrl: run.ctrl, ctrl_b: ctrlB,
            params: run.params('broydenPrefixHead', {
              ...sumsFlags, rows, stride, cur, memory, m: run.batch, n: denseHead.size, k: d, trial: 0, header_in_b: 0, chunk: 0, splits: 0,
            }),
            sums, state, factors, aux, weight: denseHead.path.weight, weight4: denseHead.path.weight, bias: denseHead.path.bias, epi_qd: run.qdBuffer, out: denseHead.output,
          }),
        )
      : normHead && headKernel
        ? byParity((cur) =>
            headKernel.bind({
              ctrl: run.ctrl, ctrl_b: ctrlB,
              params: run.params('broydenPrefixNormHead', { ...sumsFlags, rows, stride, cur, memory, n, ...stageMembers(run, normHead) }),
              sums, state, factors, aux, gamma: normHead.norm.gamma, beta: normHead.norm.beta, epi_qd: run.qdBuffer, out: normHead.output,
            }),
          )
        : pointwiseHead && pointwiseKernel
          ? byParity((cur) =>
              pointwiseKernel.bind({
                ctrl: run.ctrl, ctrl_b: ctrlB, params: run.params('broydenAdvance', { ...layout(1 - cur), ...sumsFlags }),
                sums, state, factors, aux, epi_qd: run.qdBuffer, out: pointwiseHead.output,
              }),
            )
          : null;
    const headUsed = headBindings ? (denseHead ?? normHead ?? pointwiseHead) : undefined;
    const rest: FusedPrefix | null = headUsed && prefix ? { output: prefix.output, size: prefix.size, encode: headUsed.rest } : null;
    // The advance kernel stays where no kernel of the iteration computes the advance: a prefix or a
    // stage tail without a head.
    const advances = (prefix !== undefined || tail !== null) && headBindings === null;
    const [hx, hy] = headProduct?.groups ?? normHead?.norm.grid ?? [groups, 1];
    iterate = (pass, t) => {
      const cur = t % 2;
      if (t === 0) {
        genericIteration(pass, t);
        if (advances) k('broydenAdvance').dispatch(pass, advanceGroups[0], groups);
        return;
      }
      // Replayed by slot and gate, apart from the layer's whole evaluation (keys 0, 1).
      if (headKernel && headBindings && headUsed && rest) {
        headKernel.dispatch(pass, headBindings[cur], hx, hy);
        run.evaluatePrefix(pass, rest, headUsed.output, run.ctrl, 2 + cur);
      } else if (prefix) run.evaluatePrefix(pass, prefix, slot(1 - cur), run.ctrl, 2 + cur);
      measureStep(pass, cur);
      k('broydenDecide').dispatch(pass, decideGroup, groups);
      if (advances) k('broydenAdvance').dispatch(pass, advanceGroups[cur], groups);
    };
    // The decide kernel's header waits in ctrl_b for the next dense kernel or head: copy it where the readback looks.
    if (!advances) hooks = { close: (encoder) => encoder.copyBufferToBuffer(ctrlB, 0, run.ctrl, 0, CONTROL_HEADER_SIZE) };
  }
  if (splitPath?.split && fusedPath) {
    // Iteration 0 as the generic one without its advance; from then on the split step (the advance
    // of the iteration before as the product's operand), the combining measurement, the decide kernel.
    const { splits, chunk } = splitPath.split;
    const d = f.featureSize;
    const partials = run.scratchBuffer(splits * n);
    const splitStep = k('broydenSplitStep');
    const splitMeasure = k('broydenSplitMeasure');
    const stepBindings = byParity((cur) =>
      splitStep.bind({
        ctrl: run.ctrl, ctrl_b: ctrlB,
        params: run.params('broydenSplitStep', { ...sumsFlags, rows, stride, cur, memory, m: run.batch, n: d, k: d, trial: 0, header_in_b: 0, chunk, splits }),
        sums, state, factors, aux, weight: fusedPath.weight, weight4: fusedPath.weight, gemm_partial: partials,
      }),
    );
    const measureBindings = byParity((cur) =>
      splitMeasure.bind({
        ctrl: run.ctrl, params: run.params('broydenSplitMeasure', { ...layout(cur), from_state: 0, splits, features: d }),
        state, factors, aux, sums, bias: fusedPath.bias, epi_qd: run.qdBuffer, gemm_partial: partials,
      }),
    );
    const [gx, gy, gz] = splitPath.groups;
    iterate = (pass, t) => {
      if (t === 0) {
        genericIteration(pass, t);
        return;
      }
      splitStep.dispatch(pass, stepBindings[t % 2], gx, gy, gz);
      splitMeasure.dispatch(pass, measureBindings[t % 2], groups, Math.min(t, memory) + 1);
      k('broydenDecide').dispatch(pass, decideGroup, groups);
    };
  }
  if (splitPath && fusedPath) {
    // The decide kernel's header waits in ctrl_b for the next split step: copy it where the readback looks.
    hooks = { close: (encoder) => encoder.copyBufferToBuffer(ctrlB, 0, run.ctrl, 0, CONTROL_HEADER_SIZE) };
  }

  // sums' layout entries (lib/broyden_state.wgsl): n, stride, rows, return_b; the entries of the
  // measuring kernel's rows in iteration 0 and in the later ones; whether the decide kernel takes
  // the line search's last decision (the dense trials) in the later ones; whether rows hold thread sums.
  const layoutWords = new Uint32Array(4 * SUMS_LAYOUT);
  layoutWords.set([n, stride, rows, bestFactors ? 1 : 0, groups, product || tail ? denseParts : groups, product && opts.ls ? 1 : 0, sumsFlags.thread_sums]);
  engine.device.queue.writeBuffer(sums, 0, layoutWords);
  /** The factors of the best iterate as tensors [n, L] and [L, n] (returnB). */
  const factorsOf = async (snapshot: ControlSnapshot): Promise<BroydenFactors | undefined> => {
    if (!bestFactors) return undefined;
    const transpose = k('transpose');
    const Us = engine.allocate(n * memory * 4, 'options.lbfgsThres');
    const VTs = engine.allocate(n * memory * 4, 'options.lbfgsThres');
    const copied = engine.submitPass('broyden', (pass) => {
      const copy = (src: BufferRegion, dst: GPUBuffer, transposed: number) => {
        const params = run.params('transpose', { n, memory, stride, transpose: transposed });
        transpose.dispatch(pass, transpose.bind({ params, src, dst }), Math.min(65535, Math.ceil(n / 64)), memory);
      };
      copy({ buffer: bestFactors, offset: 0, size: half }, Us, 1);
      copy({ buffer: bestFactors, offset: half, size: half }, VTs, 0);
    });
    try {
      await copied;
    } catch (err) {
      engine.releaseBuffer(Us);
      engine.releaseBuffer(VTs);
      throw err;
    }
    return {
      Us: new Tensor(engine, Us, [n, memory], true),
      VTs: new Tensor(engine, VTs, [memory, n], true),
      validMask: Array.from({ length: memory }, (_, j) => j < snapshot.bestNValid),
    };
  };

  return {
    init: (encoder) => {
      encoder.clearBuffer(factors);
      if (bestFactors) encoder.clearBuffer(bestFactors);
      const pass = encoder.beginComputePass();
      run.evaluate(pass, slot(0), fx);
      k('broydenFinalize').dispatch(pass, firstFinalize, reduceGroups); // g0 = f(x0) − x0 into slot 2
      run.finish(pass, FinishMode.broydenFirst);
      run.commit(pass, slot(0), slot(0));
      pass.end();
      encoder.copyBufferToBuffer(state, 2 * stride * 4, aux, 0, n * 4); // first direction: update = g0
      const step = encoder.beginComputePass();
      k('broydenStep').dispatch(step, stepGroups[0], elementGroups); // the first trial point x0 + update
      step.end();
    },
    iterate,
    first: 0,
    end: opts.maxDepth,
    hooks: { ...hooks, start: (encoder) => run.encodeStart(encoder, state) }, // x0 in slot 0
    factors: factorsOf,
  };
}
