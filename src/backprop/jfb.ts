/**
 * Jacobian-free backpropagation: the gradient of the last step uStar = f(uPrev) alone, with uPrev
 * held constant — grads = VJP of (params, Qd) ↦ f(uPrev; params, Qd) applied to gradUStar.
 */
import type { ImplicitLayer } from '../layers/layer';
import type { Tensor } from '../tensor';
import { implicitResult, jfbGradients, solveAndRecompute, type ImplicitOptions, type ImplicitResult } from './implicit';

/** Solves for the fixed point and returns it with a JFB `backward`. */
export async function jfb(f: ImplicitLayer, Qd: Tensor, options?: ImplicitOptions): Promise<ImplicitResult> {
  const solved = await solveAndRecompute(f, Qd, options, false, 'jfb');
  return implicitResult(solved, async (gradUStar) => ({
    grads: await jfbGradients(solved, gradUStar),
    info: { method: 'jfb', converged: true, fellBack: false },
  }));
}
