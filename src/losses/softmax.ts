/**
 * Softmax cross-entropy for classifiers, computed on the GPU: the gradient is a tensor, and the
 * loss and the number of correct predictions stay on the GPU until read.
 */
import type { Engine } from '../engine';
import { ShapeError } from '../errors';
import type { BufferRegion } from '../gpu/kernel';
import { SHADERS } from '../gpu/shaders';
import type { Loss } from '../losses';
import { Tensor } from '../tensor';
import { describe, isBufferRegion, readTensor } from '../validate';

/**
 * Class labels, one per row: CPU integers (uploaded, checked to lie in [0, classes)) or a GPU
 * buffer / region of u32 values (not checked; a row whose label is ≥ classes is ignored: it adds
 * nothing to the loss or the count and gets a zero gradient row).
 */
export type Labels = Uint8Array | Uint16Array | Uint32Array | readonly number[] | BufferRegion;

/** Softmax cross-entropy: a {@link Loss} (`total` is the mean loss) plus an accuracy count. */
export interface SoftmaxCrossEntropyLoss extends Loss {
  /** Number of rows whose first maximal logit is at the label, as a 1-element float32 tensor. */
  correct: Tensor;
  /** Reads `correct` / rows (one 4-byte readback). */
  accuracy(): Promise<number>;
}

function isCpuLabels(labels: Labels): labels is Uint8Array | Uint16Array | Uint32Array | readonly number[] {
  return Array.isArray(labels) || labels instanceof Uint8Array || labels instanceof Uint16Array || labels instanceof Uint32Array;
}

/** Bytes a GPU label region provides, or undefined when unknown. */
function regionBytes(labels: BufferRegion): number | undefined {
  if ('mapState' in labels) return labels.size;
  return labels.size ?? labels.buffer.size - (labels.offset ?? 0);
}

/**
 * Mean softmax cross-entropy of `logits` ([rows, classes]; classes is the last dimension) against
 * integer `labels`: `loss = mean_r (log Σ_c exp z[r, c] − z[r, label_r])`, evaluated with the
 * row maximum subtracted (finite for any finite logits), its gradient
 * `grad = (softmax(z) − onehot(label)) / rows`, and the count of rows whose first argmax is the
 * label. One submit, no readback; sums run in a fixed order (deterministic).
 *
 * @throws ShapeError (`'logits'`: not a Tensor, or not at least 2 classes; `'labels'`: wrong count, a CPU label
 * that is not an integer in [0, classes), or a GPU buffer too small), DisposedError /
 * EngineMismatchError (`'logits'`), LimitError, DeviceLostError.
 */
export async function softmaxCrossEntropy(logits: Tensor, labels: Labels): Promise<SoftmaxCrossEntropyLoss> {
  const engine: Engine = readTensor(logits, 'logits').engine;
  engine.assertAlive('softmaxCrossEntropy');
  await engine.settleWraps();
  logits.assertUsable(engine, 'logits');
  const classes = logits.shape[logits.shape.length - 1];
  if (classes < 2) throw new ShapeError('logits', `needs at least 2 classes in its last dimension, got shape [${logits.shape.join(', ')}]`);
  const rows = logits.size / classes;

  let labelRegion: BufferRegion;
  let uploaded: GPUBuffer | undefined;
  if (isCpuLabels(labels)) {
    if (labels.length !== rows) throw new ShapeError('labels', `must have one label per row (${rows}), got ${labels.length}`);
    const values = new Uint32Array(rows);
    for (let r = 0; r < rows; r++) {
      const label = labels[r];
      if (!Number.isInteger(label) || label < 0 || label >= classes) {
        throw new ShapeError('labels', `label ${label} at row ${r} is not an integer in [0, ${classes})`);
      }
      values[r] = label;
    }
    uploaded = engine.allocate(rows * 4, 'labels');
    engine.device.queue.writeBuffer(uploaded, 0, values.buffer, values.byteOffset, values.byteLength);
    labelRegion = uploaded;
  } else {
    if (!isBufferRegion(labels)) {
      throw new ShapeError('labels', `must be integers (an array, Uint8Array, Uint16Array, Uint32Array) or a GPU buffer / region of u32, got ${describe(labels)}`);
    }
    const bytes = regionBytes(labels);
    if (bytes !== undefined && bytes < rows * 4) throw new ShapeError('labels', `buffer holds ${bytes} bytes but ${rows} u32 labels need ${rows * 4}`);
    labelRegion = labels;
  }

  const [rowsKernel, totalKernel] = await Promise.all([
    engine.kernel('softmaxXentRows', SHADERS.softmaxXent, 'rows_main'),
    engine.kernel('softmaxXentTotal', SHADERS.softmaxXent, 'total_main'),
  ]);
  // One thread per row; at most 256 partials so the total fits one workgroup pass.
  const groups = Math.min(256, Math.ceil(rows / 256));
  const partials = engine.allocate(16 * groups, 'logits');
  const scalar = (): Tensor => new Tensor(engine, engine.allocate(4, 'logits'), [1], true);
  const outputs = () => ({ grad: new Tensor(engine, engine.allocate(logits.size * 4, 'logits'), logits.shape, true), total: scalar(), correct: scalar() });
  let grad: Tensor;
  let total: Tensor;
  let correct: Tensor;
  try {
    ({ grad, total, correct } = await engine.submitInto('softmaxCrossEntropy', outputs, (pass, out) => {
      const bindings = {
        params: engine.params(rowsKernel, { rows, classes, groups }),
        logits: logits.buffer,
        labels: labelRegion,
        grad: out.grad.buffer,
        partials,
        loss: out.total.buffer,
        correct: out.correct.buffer,
      };
      rowsKernel.dispatch(pass, rowsKernel.bind(bindings), groups);
      totalKernel.dispatch(pass, totalKernel.bind(bindings), 1);
    }));
  } finally {
    // Later users of these pooled buffers are queued after this submit.
    engine.releaseBuffer(partials);
    if (uploaded) engine.releaseBuffer(uploaded);
  }
  return {
    grad,
    total,
    correct,
    value: async () => (await total.read())[0],
    accuracy: async () => (await correct.read())[0] / rows,
    dispose() {
      grad.dispose();
      total.dispose();
      correct.dispose();
    },
  };
}
