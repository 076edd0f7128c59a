// Softmax cross-entropy in float64: mean over rows of −log softmax(z)[label], its gradient
// (softmax − onehot) / rows, and the number of rows whose first argmax equals the label.
// A label outside [0, classes) marks the row as ignored (no loss, no hit, zero gradient), as the
// GPU kernel does; the mean still divides by all rows.

/** Result of {@link refSoftmaxCrossEntropy}. */
export interface RefSoftmaxXent {
  /** Mean loss over rows. */
  loss: number;
  /** ∂loss/∂logits, [rows, classes]. */
  grad: Float64Array;
  /** Rows whose first maximal logit is at the label. */
  correct: number;
}

/**
 * @param logits [rows, classes] row-major
 * @param labels one class index per row
 */
export function refSoftmaxCrossEntropy(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): RefSoftmaxXent {
  const rows = labels.length;
  if (logits.length !== rows * classes) throw new Error(`logits must have ${rows * classes} entries, got ${logits.length}`);
  const grad = new Float64Array(rows * classes);
  let total = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (!(Number.isInteger(label) && label >= 0 && label < classes)) continue;
    const base = r * classes;
    let top = logits[base];
    let arg = 0;
    for (let j = 1; j < classes; j++) {
      if (logits[base + j] > top) {
        top = logits[base + j];
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(logits[base + j] - top);
    total += top - logits[base + label] + Math.log(sum);
    for (let j = 0; j < classes; j++) {
      grad[base + j] = (Math.exp(logits[base + j] - top) / sum - (j === label ? 1 : 0)) / rows;
    }
    if (arg === label) correct++;
  }
  return { loss: total / rows, grad, correct };
}
