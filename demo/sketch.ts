// The drawing pad: pointer strokes on a large canvas, reduced to a 28 × 28 image the way MNIST
// digits were made (the ink's bounding box scaled into 20 × 20, centred by its centre of mass).
const SIDE = 28;
const BOX = 20;

export class SketchPad {
  private readonly ctx: CanvasRenderingContext2D;
  private drawing = false;
  private last: { x: number; y: number } | null = null;
  private inked = false;

  /** `onChange` runs after each finished stroke with the 784 pixels in [0, 1]. */
  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly preview: HTMLCanvasElement,
    private readonly onChange: (pixels: Float32Array) => void,
  ) {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('2d canvas unavailable');
    this.ctx = ctx;
    this.clear();
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.drawing = true;
      this.last = this.point(e);
      this.stroke(this.last);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (this.drawing) this.stroke(this.point(e));
    });
    const end = (): void => {
      if (!this.drawing) return;
      this.drawing = false;
      this.last = null;
      if (this.inked) this.onChange(this.pixels());
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  clear(): void {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
    this.preview.getContext('2d')?.clearRect(0, 0, SIDE, SIDE);
  }

  /** Pointer position in canvas pixels (the canvas is shown scaled by CSS). */
  private point(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * this.canvas.width) / r.width, y: ((e.clientY - r.top) * this.canvas.height) / r.height };
  }

  private stroke(p: { x: number; y: number }): void {
    const { ctx } = this;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = this.canvas.width / 12;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    const from = this.last ?? p;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    // A zero-length segment with round caps draws a dot.
    ctx.lineTo(p.x + 0.01, p.y);
    ctx.stroke();
    this.last = p;
    this.inked = true;
  }

  /** The drawing as 28 × 28 pixels in [0, 1], MNIST-style; also shown in the preview canvas. */
  pixels(): Float32Array {
    const { width, height } = this.canvas;
    const src = this.ctx.getImageData(0, 0, width, height).data;
    let x0 = width, y0 = height, x1 = -1, y1 = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (src[(y * width + x) * 4] > 32) {
          x0 = Math.min(x0, x); x1 = Math.max(x1, x);
          y0 = Math.min(y0, y); y1 = Math.max(y1, y);
        }
      }
    }
    const out = new Float32Array(SIDE * SIDE);
    if (x1 < 0) return out;
    // Scale the ink box into 20 × 20 (keeping the aspect), with the browser's smoothing as the low-pass.
    const scale = BOX / Math.max(x1 - x0 + 1, y1 - y0 + 1);
    const w = Math.max(1, Math.round((x1 - x0 + 1) * scale));
    const h = Math.max(1, Math.round((y1 - y0 + 1) * scale));
    const small = document.createElement('canvas');
    small.width = SIDE;
    small.height = SIDE;
    const sctx = small.getContext('2d');
    if (!sctx) return out;
    sctx.imageSmoothingQuality = 'high';
    sctx.drawImage(this.canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 0, 0, w, h);
    const boxed = sctx.getImageData(0, 0, w, h).data;
    // Centre of mass of the scaled ink goes to the image centre, as in MNIST.
    let mass = 0, cx = 0, cy = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = boxed[(y * w + x) * 4] / 255;
        mass += v; cx += v * x; cy += v * y;
      }
    }
    const dx = Math.round(SIDE / 2 - (mass > 0 ? cx / mass : w / 2));
    const dy = Math.round(SIDE / 2 - (mass > 0 ? cy / mass : h / 2));
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const tx = x + dx, ty = y + dy;
        if (tx >= 0 && tx < SIDE && ty >= 0 && ty < SIDE) out[ty * SIDE + tx] = boxed[(y * w + x) * 4] / 255;
      }
    }
    drawDigit(this.preview, out);
    return out;
  }
}

/** Paints 784 pixels in [0, 1] (white ink on black) onto a 28 × 28 canvas. */
export function drawDigit(canvas: HTMLCanvasElement, pixels: ArrayLike<number>): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const image = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
    image.data[i * 4] = v;
    image.data[i * 4 + 1] = v;
    image.data[i * 4 + 2] = v;
    image.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}
