/**
 * An SVG chart of the suite's rows, written as plain text (no chart library): µs per
 * f-evaluation against problem size, log-log, one panel per solver and one line per contender
 * (this engine, the same engine reading back every iteration, TF.js WebGPU, the CPU loop).
 */
import type { BenchRow } from './suite';

/** A line of one panel. */
interface Series {
  name: string;
  color: string;
  points: { x: number; y: number; label: string }[];
}

const PANEL = { width: 440, height: 320, left: 64, right: 16, top: 36, bottom: 52 };
const COLORS: Record<string, string> = {
  engine: '#1f77b4',
  'readback every iter': '#ff7f0e',
  tfjs: '#2ca02c',
  cpu: '#d62728',
};
/** Width of one legend entry. */
const LEGEND_ITEM = 190;
const SPARE_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const NAMES: Record<string, string> = { engine: 'this engine (GPU-resident)', tfjs: 'TF.js WebGPU', cpu: 'CPU loop (TS)' };

/** Problem size on the x axis: multiply-adds ×2 of one evaluation, 2·batch·d². */
export function problemSize(r: Pick<BenchRow, 'd' | 'batch'>): number {
  return 2 * Math.max(r.batch, 1) * r.d * r.d;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function seriesOf(rows: readonly BenchRow[], contenders: readonly string[]): Series[] {
  const label = (r: BenchRow) => `d=${r.d}, batch=${r.batch}`;
  const all: Series[] = [
    { name: 'engine', color: COLORS.engine, points: rows.map((r) => ({ x: problemSize(r), y: r.usPerEval, label: label(r) })) },
    {
      name: 'readback every iter',
      color: COLORS['readback every iter'],
      points: rows.map((r) => ({ x: problemSize(r), y: r.usPerEvalReadbackEvery, label: label(r) })),
    },
    ...contenders.map((name, i) => ({
      name,
      color: COLORS[name] ?? SPARE_COLORS[i % SPARE_COLORS.length],
      points: rows.flatMap((r) => {
        const figures = r.contenders[name];
        return figures ? [{ x: problemSize(r), y: figures.usPerEval, label: label(r) }] : [];
      }),
    })),
  ];
  for (const s of all) s.points.sort((a, b) => a.x - b.x || a.y - b.y);
  return all.filter((s) => s.points.length > 0);
}

/** Decade bounds [10^lo, 10^hi] around the values (one decade at least). */
function decades(values: number[]): [number, number] {
  const lo = Math.floor(Math.log10(Math.min(...values)));
  const hi = Math.ceil(Math.log10(Math.max(...values)));
  return [lo, Math.max(hi, lo + 1)];
}

function superscript(exponent: number): string {
  const digits: Record<string, string> = { '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹' };
  return `10${String(exponent).split('').map((c) => digits[c] ?? c).join('')}`;
}

function panel(title: string, series: Series[], offsetX: number): string {
  const { width, height, left, right, top, bottom } = PANEL;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const [xLo, xHi] = decades(series.flatMap((s) => s.points.map((p) => p.x)));
  const [yLo, yHi] = decades(series.flatMap((s) => s.points.map((p) => p.y)));
  const px = (x: number) => offsetX + left + ((Math.log10(x) - xLo) / (xHi - xLo)) * plotW;
  const py = (y: number) => top + plotH - ((Math.log10(y) - yLo) / (yHi - yLo)) * plotH;
  const parts: string[] = [`<g class="panel" data-solver="${escapeXml(title)}">`];
  parts.push(`<text x="${offsetX + left + plotW / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`);
  parts.push(`<rect x="${offsetX + left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  for (let e = xLo; e <= xHi; e++) {
    const x = px(10 ** e).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#ddd"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 16}" text-anchor="middle" font-size="11">${superscript(e)}</text>`);
  }
  for (let e = yLo; e <= yHi; e++) {
    const y = py(10 ** e).toFixed(1);
    parts.push(`<line x1="${offsetX + left}" y1="${y}" x2="${offsetX + left + plotW}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${offsetX + left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${superscript(e)}</text>`);
  }
  parts.push(`<text x="${offsetX + left + plotW / 2}" y="${height - 12}" text-anchor="middle" font-size="11">problem size: 2·batch·d² flop per f-evaluation</text>`);
  parts.push(
    `<text x="${offsetX + 14}" y="${top + plotH / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${offsetX + 14} ${top + plotH / 2})">µs per f-evaluation</text>`,
  );
  for (const s of series) {
    const coords = s.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    parts.push(`<polyline data-series="${escapeXml(s.name)}" points="${coords}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of s.points) {
      parts.push(
        `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${s.color}"><title>${escapeXml(`${NAMES[s.name] ?? s.name}: ${p.label}, ${p.y.toFixed(1)} µs`)}</title></circle>`,
      );
    }
  }
  parts.push('</g>');
  return parts.join('\n');
}

/**
 * The chart as an SVG document: one panel per solver in `rows`, one polyline per contender with
 * data in that panel, a legend, and `caption` (adapter, date) underneath.
 */
export function renderChart(rows: readonly BenchRow[], contenders: readonly string[], caption: string): string {
  const solvers = [...new Set(rows.map((r) => r.solver))];
  const names = ['engine', 'readback every iter', ...contenders];
  const width = Math.max(1, solvers.length) * PANEL.width;
  const perLine = Math.max(1, Math.floor((width - 16) / LEGEND_ITEM));
  const legendHeight = Math.ceil(names.length / perLine) * 18;
  const height = PANEL.height + legendHeight + 24;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  solvers.forEach((solver, i) => {
    const series = seriesOf(rows.filter((r) => r.solver === solver), contenders);
    parts.push(panel(solver, series, i * PANEL.width));
  });
  names.forEach((name, i) => {
    const x = 16 + (i % perLine) * LEGEND_ITEM;
    const y = PANEL.height + 8 + Math.floor(i / perLine) * 18;
    const color = COLORS[name] ?? SPARE_COLORS[(i - 2) % SPARE_COLORS.length];
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${x + 30}" y="${y}" dominant-baseline="middle">${escapeXml(NAMES[name] ?? name)}</text>`);
  });
  parts.push(`<text x="16" y="${height - 10}" font-size="11" fill="#555">${escapeXml(caption)}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
