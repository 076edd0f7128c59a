/**
 * Picard iteration u ← f(u), keeping the best iterate.
 *
 * One evaluation per iteration: evaluating f at u_t yields u_{t+1}, its residual u_{t+1} − u_t,
 * and (for t = 0) the initial residual too. After the first iteration, an iteration is the layer's
 * kernels and one step kernel (shaders/picard_step.wgsl), which ends the iteration before and
 * measures this one; iterates live in a ring of three slots chosen by t.
 * A layer that offers a fused path (a deterministic dense layer with a fused epilogue, such as the
 * tanh block) takes one dispatch per iteration instead (shaders/picard_dense_step.wgsl: the step in
 * its product's prologue and epilogue; for a split-k product shaders/picard_split_step.wgsl, where
 * each workgroup combines the partials the step before left for its own slice of k), or on a GPU,
 * for a small state, whole iterations, `checkEvery` of them per dispatch, in one workgroup
 * (shaders/picard_fused.wgsl), by the same rules. A layer of k kernels ending in such a product
 * or in a normalisation or a convolution (`fusedStageTail`: shaders/picard_norm_step.wgsl,
 * picard_conv_step.wgsl, the step around that kernel's forward) takes k: the kernels before it,
 * then that one.
 */
import type { Kernel } from '../gpu/kernel';
import type { FusedProduct } from '../layers/dense';
import type { FusedPicardPath, FusedStageTail, ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import type { SolverOptions } from './options';
import { picardPerSample } from './per-sample';
import { solve } from './program';
import { FinishMode, type Plan, type SolveRun } from './run';
import type { SolveResult } from '../results';
import { STAGE_STEP_THREADS, stageStep, type StageStep } from './stage-tail';

/** Finds u* = f(u*, Qd) by fixed-point iteration. See {@link SolverOptions}. */
export function picard(f: ImplicitLayer, Qd: Tensor, options?: SolverOptions): Promise<SolveResult> {
  return solve('picard', f, Qd, options, ['picardStep'], picardPlan, picardPerSample);
}

/** What a Picard solve builds before iterating (see Plan): the fused, dense or generic path. */
async function picardPlan(run: SolveRun): Promise<Plan> {
  const fused = run.fusedPath(true);
  // Whole iterations in one workgroup, except on a CPU adapter that can run the dense step: there
  // that workgroup is one CPU thread, its barriers cost in proportion to its 256 invocations.
  // A layer with kernels before its product: those, then the product with the step around it;
  // a split-k product: the combine folds into the next step (shaders/picard_split_step.wgsl), not
  // on a CPU adapter, where it measured slower than the generic kernels (docs/architecture.md).
  const split = Boolean(fused?.product?.split);
  const shader = fused?.prefix ? 'picardPrefixStep' : split ? 'picardSplitStep' : 'picardDenseStep';
  const product = split && run.engine.cpuAdapter ? null : run.denseProduct(fused, shader, 'step');
  if (fused?.kind === 'dense' && fused.wholeState && !(run.engine.cpuAdapter && product)) {
    await run.addKernel('picardFused', fused.constants);
    return picardFused(run, fused);
  }
  if (fused && product) {
    const constants = { ...fused.constants, ...product.constants, REDUCE_SIZE: product.threads };
    await run.addKernel(shader, constants, `step_${product.body}_main`);
    const prime = product.split ? await run.entryKernel(shader, constants, `prime_${product.body}_main`) : undefined;
    return picardSteps(run, { path: fused, product, shader, prime });
  }
  // A layer ending in a normalisation or a convolution: its kernels before that one, then it with
  // the step around it (shaders/picard_norm_step.wgsl, picard_conv_step.wgsl).
  const shaders = { norm: 'picardNormStep', conv: 'picardConvStep' } as const;
  const tail = fused ? null : run.stageTail(shaders);
  if (tail) {
    const step = stageStep(run, tail, shaders);
    await run.addKernel(step.shader, step.constants);
    return picardSteps(run, undefined, { tail, step });
  }
  return picardSteps(run);
}

/** The dense path of picardSteps: the layer's parts, and its product as one kernel. */
interface DenseSteps {
  path: FusedPicardPath;
  product: FusedProduct;
  shader: 'picardDenseStep' | 'picardPrefixStep' | 'picardSplitStep';
  /** Split-k: the kernel that computes the first fused step's partial products (prime_*_main). */
  prime?: Kernel;
}

/**
 * The partial sums one dense step kernel leaves for the next to measure: one per workgroup, or
 * for split-k one per (row block, slice): only column block 0 measures (picard_split_step.wgsl);
 * with thread sums (SolveRun.threadSums) one per thread.
 */
function measuredParts(product: FusedProduct, threadSums: boolean): number {
  const [gx, gy, gz] = product.groups;
  return (product.split ? gy * gz : gx * gy) * (threadSums ? product.threads : 1);
}

/**
 * The first iteration by the separate kernels (evaluate, residual sums, finish, commit: it
 * measures the start too), then per iteration t the layer's evaluation u_{t+1} = f(u_t) and the
 * step kernel, which measures iteration t − 1 (and commits it) and sums iteration t's residual; one
 * more step after the last evaluation measures that.
 */
function picardSteps(run: SolveRun, dense?: DenseSteps, stage?: { tail: FusedStageTail; step: StageStep }): Plan {
  const tail = stage?.tail;
  // Three buffers, not slots of one: an evaluation reads one iterate and writes the next, and a
  // buffer written by a dispatch may not be bound to it otherwise.
  const ring = [run.scratchBuffer(run.n), run.scratchBuffer(run.n), run.scratchBuffer(run.n)];
  const slot = (t: number) => ring[t % 3];
  // The dense kernels leave one partial per thread on a CPU adapter (not split-k, which only column block 0 measures).
  const threadSums = ((dense !== undefined && !dense.product.split) || tail !== undefined) && run.threadSums;
  const [tx, ty] = stage?.step.grid ?? [0, 0];
  const denseParts = dense ? measuredParts(dense.product, threadSums) : tail ? tx * ty * (threadSums ? STAGE_STEP_THREADS : 1) : 0;
  const steps = run.stepState(denseParts);
  // The partials each step reads: those the step before wrote (the dense or norm kernel's, or the generic kernel's).
  const measured = dense || tail ? denseParts : steps.groups;
  // The generic step reads the dense kernels' partials only as the tail, whose own nobody reads.
  const sumsFlag = { thread_sums: threadSums ? 1 : 0 };
  const kernel = run.kernel('picardStep');
  const common = (t: number) => ({
    ctrl: run.ctrl,
    ctrl_b: steps.ctrlB,
    step_partials: steps.partials,
    step_candidate: slot(t),
    step_previous: slot(t + 2),
    best_u: run.bestU,
    best_prev: run.bestPrev,
  });
  // The bindings depend on t mod 6 (slots mod 3, header and partials mod 2): made once.
  const groups = Array.from({ length: 6 }, (_, t) =>
    kernel.bind({ ...common(t), params: run.params('picardStep', { ...run.stepRules(FinishMode.picard, t, measured), ...sumsFlag }), next: slot(t + 1) }),
  );
  let last = 0;
  const step = (pass: GPUComputePassEncoder, t: number): void => {
    kernel.dispatch(pass, groups[t % 6], steps.groups);
    last = t;
  };
  let iterate = (pass: GPUComputePassEncoder, t: number): void => {
    run.evaluate(pass, slot(t), slot(t + 1), run.header(t), t % 6);
    step(pass, t);
  };
  let prime: ((pass: GPUComputePassEncoder) => void) | undefined;
  if (dense) {
    const denseKernel = run.kernel(dense.shader);
    const d = run.layer.featureSize;
    const { weight, bias, prefix } = dense.path;
    const { split } = dense.product;
    const half = split ? split.splits * run.n : 0;
    // Split-k: the partial products, two halves: step t reads half t mod 2 and writes the other.
    const partials = split ? run.scratchBuffer(2 * half) : undefined;
    const splitRules = (t: number): Record<string, number> =>
      split ? { chunk: split.chunk, splits: split.splits, split_in: (t % 2) * half, split_out: ((t + 1) % 2) * half } : {};
    const paramsOf = (t: number) =>
      run.params(dense.shader, { ...run.stepRules(FinishMode.picard, t, denseParts), m: run.batch, n: d, k: prefix?.size ?? d, ...splitRules(t), ...sumsFlag });
    const operands = {
      weight, weight4: weight, bias, epi_qd: run.qdBuffer, ...(partials ? { gemm_partial: partials } : {}), ...(prefix ? { product_a: prefix.output } : {}),
    };
    const denseGroupsOf = Array.from({ length: 6 }, (_, t) => denseKernel.bind({ ...common(t), params: paramsOf(t), ...operands, next: slot(t + 1) }));
    const [gx, gy, gz] = dense.product.groups;
    iterate = (pass, t) => {
      // The prefix of u_t, gated by the header the step of iteration t reads (as an evaluation is).
      if (prefix) run.evaluatePrefix(pass, prefix, slot(t), run.header(t), t % 6);
      denseKernel.dispatch(pass, denseGroupsOf[t % 6], gx, gy, gz);
      last = t;
    };
    const primeKernel = dense.prime;
    if (primeKernel) {
      // u_1's partial products, in the half step 1 reads (split_out of "step 0").
      const primeGroup = primeKernel.bind({ params: paramsOf(0), step_candidate: slot(1), ...operands, next: slot(2) });
      prime = (pass) => primeKernel.dispatch(pass, primeGroup, gx, gy, gz);
    }
  }

  if (stage) {
    // The prefix of u_t (gated by the header the step of iteration t reads, as an evaluation is),
    // then the norm's or the convolution's forward with the step around it.
    const { tail: layerTail, step } = stage;
    const tailKernel = run.kernel(step.shader);
    const tailGroupsOf = Array.from({ length: 6 }, (_, t) =>
      tailKernel.bind({
        ...common(t), params: run.params(step.shader, { ...run.stepRules(FinishMode.picard, t, denseParts), ...step.members, ...sumsFlag }),
        ...step.operands, epi_qd: run.qdBuffer, next: slot(t + 1), product_a: layerTail.prefix?.output ?? slot(t),
      }),
    );
    iterate = (pass, t) => {
      if (layerTail.prefix) run.evaluatePrefix(pass, layerTail.prefix, slot(t), run.header(t), t % 6);
      tailKernel.dispatch(pass, tailGroupsOf[t % 6], tx, ty);
      last = t;
    };
  }

  return {
    init: (encoder) => {
      const pass = encoder.beginComputePass();
      run.evaluate(pass, slot(0), slot(1)); // u1 = f(u0)
      run.residual(pass, slot(0), slot(1));
      run.finish(pass, FinishMode.picardFirst);
      run.commit(pass, slot(1), slot(0));
      prime?.(pass);
      pass.end();
    },
    iterate,
    first: 1,
    end: run.opts.maxDepth,
    hooks: { start: (encoder) => run.encodeStart(encoder, ring[0]), tail: step, close: (encoder) => run.closeSteps(encoder, last) },
  };
}

/** Whole iterations in one workgroup, `checkEvery` per dispatch, one dispatch per submit. */
function picardFused(run: SolveRun, block: FusedPicardPath): Plan {
  const state = run.scratchBuffer(run.n);
  const kernel = run.kernel('picardFused');
  const iterations = run.opts.checkEvery;
  const group = (first: boolean) =>
    kernel.bind({
      ctrl: run.ctrl,
      params: run.params('picardFused', {
        ...run.finishRules(), d: run.layer.featureSize, batch: run.batch, iterations, first: first ? 1 : 0,
      }),
      weight: block.weight, bias: block.bias, epi_qd: run.qdBuffer, state, best_u: run.bestU, best_prev: run.bestPrev,
    });
  const firstGroup = group(true);
  const nextGroup = group(false);
  const dispatches = Math.ceil(run.opts.maxDepth / iterations);
  return {
    init: (encoder) => {
      const pass = encoder.beginComputePass();
      kernel.dispatch(pass, firstGroup, 1);
      pass.end();
    },
    iterate: (pass) => kernel.dispatch(pass, nextGroup, 1),
    first: 1,
    end: dispatches,
    perSubmit: 1,
    callIterations: iterations,
    hooks: { start: (encoder) => run.encodeStart(encoder, state) },
  };
}
