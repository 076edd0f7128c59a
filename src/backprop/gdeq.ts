/**
 * GDEQ: JFB with the incoming gradient preconditioned by the solver's best Broyden factors,
 * g̃ = −(gᵀB) = g − (gᵀU)Vᵀ over the valid columns. With picard or anderson there are no factors
 * and GDEQ equals JFB.
 */
import type { Engine } from '../engine';
import { LimitError, ShapeError } from '../errors';
import { SHADERS, wgslConstant } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import type { BroydenFactors } from '../results';
import type { Tensor } from '../tensor';
import { implicitResult, solveAndRecompute, vjp, type ImplicitOptions, type ImplicitResult } from './implicit';

/** The most factor columns the preconditioning kernels take (shaders/gdeq_precondition.wgsl). */
const MAX_COLUMNS = wgslConstant('gdeqPrecondition', 'MAX_COLUMNS', 'u32');

/**
 * Throws unless the solver's factors can precondition a gradient of `n` values. Broyden's always
 * can; a custom `options.solver` may return anything: U must be [n, L] and Vᵀ [L, n] on this
 * engine, with L = validMask.length ≤ 1024 and the valid columns first (the kernel uses columns
 * 0 .. valid − 1).
 */
function checkFactors(factors: BroydenFactors, n: number, engine: Engine): void {
  const { Us, VTs, validMask } = factors;
  const L = validMask.length;
  if (L > MAX_COLUMNS) throw new LimitError('options.lbfgsThres', `GDEQ supports at most ${MAX_COLUMNS} Broyden columns`);
  Us.assertUsable(engine, 'options.solver');
  VTs.assertUsable(engine, 'options.solver');
  if (Us.shape.join() !== [n, L].join() || VTs.shape.join() !== [L, n].join()) {
    throw new ShapeError(
      'options.solver',
      `returned Broyden factors U [${Us.shape.join(', ')}] and Vᵀ [${VTs.shape.join(', ')}]; this problem needs [${n}, ${L}] and [${L}, ${n}]`,
    );
  }
  const valid = validMask.filter(Boolean).length;
  if (validMask.some((v, j) => v !== j < valid)) throw new ShapeError('options.solver', 'returned a validMask whose valid columns are not the first ones');
}

/**
 * Solves for the fixed point and returns it with a GDEQ `backward`.
 * @throws as the solvers; LimitError (`'options.lbfgsThres'`) up front when the Broyden memory
 * asked for (a number, or null = maxDepth) exceeds the 1024 columns GDEQ preconditions with.
 */
export async function gdeq(f: ImplicitLayer, Qd: Tensor, options?: ImplicitOptions): Promise<ImplicitResult> {
  const o = typeof options === 'object' && options !== null ? options : {};
  const memory = o.lbfgsThres === null ? o.maxDepth : o.lbfgsThres;
  if (typeof memory === 'number' && memory > MAX_COLUMNS) {
    throw new LimitError('options.lbfgsThres', `GDEQ supports at most ${MAX_COLUMNS} Broyden columns, asked for ${memory}`);
  }
  const solved = await solveAndRecompute(f, Qd, options, true, 'gdeq');
  const factors = solved.result.B;
  const engine = f.engine;
  const valid = factors ? factors.validMask.filter(Boolean).length : 0;
  try {
    if (factors) checkFactors(factors, Qd.size, engine);
  } catch (err) {
    // Free the solve's buffers (uStar, uPrev, factors): nothing else would.
    solved.uStar.dispose();
    solved.result.dispose();
    factors?.Us.dispose();
    factors?.VTs.dispose();
    throw err;
  }
  const [dots, apply] = factors && valid > 0
    ? await Promise.all([
        engine.kernel('gdeqDots', SHADERS.gdeqPrecondition, 'dots'),
        engine.kernel('gdeqApply', SHADERS.gdeqPrecondition, 'apply', { constants: { COLUMNS: factors.Us.shape[1] } }),
      ])
    : [undefined, undefined];

  return implicitResult(
    solved,
    async (gradUStar) => {
      const info = { method: 'gdeq', converged: true, fellBack: false } as const;
      if (!(factors && dots && apply && valid > 0)) return { grads: await vjp(solved, solved.result.uPrev.buffer, gradUStar.buffer), info };
      const n = Qd.size;
      const memory = factors.validMask.length;
      const groups = Math.min(256, Math.ceil(n / 1024));
      const partials = engine.allocate(16 * groups * valid, 'Qd');
      const preconditioned = engine.allocate(n * 4, 'Qd');
      try {
        // One pass: the preconditioned gradient, then the VJP with it.
        const grads = await vjp(solved, solved.result.uPrev.buffer, preconditioned, (pass) => {
          const params = engine.params(dots, { n, memory, valid, groups });
          const bindings = { params, g: gradUStar.buffer, us: factors.Us.buffer, vts: factors.VTs.buffer, partials, out: preconditioned };
          dots.dispatch(pass, dots.bind(bindings), groups, valid);
          apply.dispatch(pass, apply.bind(bindings), groups);
        });
        return { grads, info };
      } finally {
        engine.releaseBuffer(partials);
        engine.releaseBuffer(preconditioned);
      }
    },
    factors satisfies BroydenFactors | undefined,
  );
}
