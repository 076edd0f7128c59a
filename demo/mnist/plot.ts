/**
 * A small hand-written SVG line plot of training loss and accuracy per step (no plotting
 * dependency: the CLI writes it next to the saved model).
 */

/** One measured step. */
export interface PlotPoint {
  step: number;
  loss: number;
  /** In [0, 1]. */
  accuracy: number;
}

const WIDTH = 720;
const HEIGHT = 360;
const PAD = { left: 56, right: 56, top: 36, bottom: 40 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);
}

/**
 * An SVG document: loss (left axis, from 0 to its maximum) and accuracy (right axis, 0–100%)
 * against the step number.
 */
export function plotSvg(points: readonly PlotPoint[], title: string): string {
  const w = WIDTH - PAD.left - PAD.right;
  const h = HEIGHT - PAD.top - PAD.bottom;
  const maxStep = Math.max(1, ...points.map((p) => p.step));
  const maxLoss = Math.max(1e-6, ...points.map((p) => (Number.isFinite(p.loss) ? p.loss : 0)));
  const x = (step: number): number => PAD.left + (step / maxStep) * w;
  const yLoss = (loss: number): number => PAD.top + h - (Math.min(loss, maxLoss) / maxLoss) * h;
  const yAcc = (acc: number): number => PAD.top + h - acc * h;
  const line = (y: (p: PlotPoint) => number): string => points.map((p) => `${x(p.step).toFixed(1)},${y(p).toFixed(1)}`).join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks
    .map((t) => {
      const yy = (PAD.top + h - t * h).toFixed(1);
      return (
        `<line x1="${PAD.left}" x2="${PAD.left + w}" y1="${yy}" y2="${yy}" stroke="#ddd"/>` +
        `<text x="${PAD.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#c0392b">${(t * maxLoss).toFixed(2)}</text>` +
        `<text x="${PAD.left + w + 6}" y="${yy}" dominant-baseline="middle" fill="#2471a3">${(t * 100).toFixed(0)}%</text>`
      );
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(title)}</text>
${grid}
<text x="${PAD.left + w / 2}" y="${HEIGHT - 8}" text-anchor="middle">step (of ${maxStep})</text>
<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="${line((p) => yLoss(p.loss))}"/>
<polyline fill="none" stroke="#2471a3" stroke-width="1.5" points="${line((p) => yAcc(p.accuracy))}"/>
<text x="${PAD.left + 8}" y="${PAD.top + 14}" fill="#c0392b">loss</text>
<text x="${PAD.left + 48}" y="${PAD.top + 14}" fill="#2471a3">accuracy</text>
</svg>
`;
}
