/**
 * Losses computed on the GPU, so a training step needs no readback: the gradient is a tensor,
 * and the loss value is read only when asked for.
 */
import type { Engine } from './engine';
import { ShapeError } from './errors';
import { SHADERS } from './gpu/shaders';
import { Tensor } from './tensor';
import { readTensor } from './validate';

/** A loss whose value stays on the GPU until `value()` is called. */
export interface Loss {
  /** ∂loss/∂prediction, prediction's shape. */
  grad: Tensor;
  /** The loss as a 1-element tensor on the GPU. */
  total: Tensor;
  /** Reads the loss (one 4-byte readback). */
  value(): Promise<number>;
  dispose(): void;
}

/**
 * Mean squared error `mean((prediction − target)²)`, or `mean(prediction²)` without a target,
 * and its gradient `2 (prediction − target) / n`.
 *
 * @throws ShapeError (`'prediction'`, `'target'`: not a Tensor; `'target'`: another shape),
 * DisposedError / EngineMismatchError (`'prediction'`, `'target'`), DeviceLostError.
 */
export async function mse(prediction: Tensor, target?: Tensor): Promise<Loss> {
  const engine: Engine = readTensor(prediction, 'prediction').engine;
  engine.assertAlive('mse');
  await engine.settleWraps();
  readTensor(prediction, 'prediction', engine);
  if (target !== undefined) {
    readTensor(target, 'target', engine);
    if (target.shape.join() !== prediction.shape.join()) {
      throw new ShapeError('target', `must have prediction's shape [${prediction.shape.join(', ')}], got [${target.shape.join(', ')}]`);
    }
  }
  const [gradKernel, totalKernel] = await Promise.all([
    engine.kernel('mseGrad', SHADERS.mse, 'grad_main'),
    engine.kernel('mseTotal', SHADERS.mse, 'total_main'),
  ]);
  const n = prediction.size;
  const groups = Math.min(256, Math.ceil(n / 1024));
  const partials = engine.allocate(16 * groups, 'prediction');
  const outputs = () => ({
    grad: new Tensor(engine, engine.allocate(n * 4, 'prediction'), prediction.shape, true),
    total: new Tensor(engine, engine.allocate(4, 'prediction'), [1], true),
  });
  let grad: Tensor;
  let total: Tensor;
  try {
    ({ grad, total } = await engine.submitInto('mse', outputs, (pass, out) => {
      const bindings = {
        params: engine.params(gradKernel, { n, groups, has_target: target ? 1 : 0 }),
        prediction: prediction.buffer,
        expected: (target ?? prediction).buffer,
        grad: out.grad.buffer,
        partials,
        loss: out.total.buffer,
      };
      gradKernel.dispatch(pass, gradKernel.bind(bindings), groups);
      totalKernel.dispatch(pass, totalKernel.bind(bindings), 1);
    }));
  } finally {
    engine.releaseBuffer(partials);
  }
  return {
    grad,
    total,
    value: async () => (await total.read())[0],
    dispose() {
      grad.dispose();
      total.dispose();
    },
  };
}
