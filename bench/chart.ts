/**
 * The chart of the suite's rows (a Vega-Lite spec, rendered by ./vega.ts): µs per f-evaluation
 * against problem size, log-log, one panel per solver and one line per contender (this engine,
 * the same engine reading back every iteration, TF.js WebGPU, the CPU loop, and the sequential
 * composition of the block where the run has one).
 */
import type { BenchRow } from './suite';
import { renderSvg, type PlotSpec } from './vega';

/** Legend names of the built-in lines, and their colours (others get the spare colours). */
const SERIES: Record<string, { name: string; color: string }> = {
  engine: { name: 'this engine (GPU-resident)', color: '#1f77b4' },
  'readback every iter': { name: 'this engine, reading back every iteration', color: '#ff7f0e' },
  tfjs: { name: 'TF.js WebGPU', color: '#2ca02c' },
  cpu: { name: 'CPU loop (TS)', color: '#d62728' },
  sequential: { name: 'this engine, sequential(linear, add(Qd), tanh())', color: '#17becf' },
};
const SPARE_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/** Axis titles (the tests look for them). */
export const CHART_AXES = { x: 'problem size: 2·batch·d² flop per f-evaluation', y: 'µs per f-evaluation' } as const;

/** Problem size on the x axis: multiply-adds ×2 of one evaluation, 2·batch·d². */
export function problemSize(r: Pick<BenchRow, 'd' | 'batch'>): number {
  return 2 * Math.max(r.batch, 1) * r.d * r.d;
}

/** The legend name of a line: `engine`, `readback every iter`, `sequential` or a contender's name. */
export function seriesName(key: string): string {
  return SERIES[key]?.name ?? key;
}

/** One plotted point. */
interface ChartPoint {
  solver: string;
  series: string;
  size: number;
  us: number;
  shape: string;
}

function pointsOf(rows: readonly BenchRow[], contenders: readonly string[]): ChartPoint[] {
  const point = (r: BenchRow, key: string, us: number): ChartPoint => ({
    solver: r.solver,
    series: seriesName(key),
    size: problemSize(r),
    us,
    shape: `d=${r.d}, batch=${r.batch}`,
  });
  // Lines join their points in order of x (Vega-Lite's default, a stable sort), so equal sizes keep this order.
  // A sequential row is the block's problem composed from stages: one line of its own, resident only.
  const pointsOfRow = (r: BenchRow): ChartPoint[] => {
    if (r.layer === 'sequential') return [point(r, 'sequential', r.usPerEval)];
    return [
      point(r, 'engine', r.usPerEval),
      point(r, 'readback every iter', r.usPerEvalReadbackEvery),
      ...contenders.flatMap((key) => {
        const figures = r.contenders[key];
        return figures ? [point(r, key, figures.usPerEval)] : [];
      }),
    ];
  };
  const points = rows.flatMap(pointsOfRow);
  // A log scale has no place for 0 or a failed (NaN) measurement.
  return points.filter((p) => p.us > 0 && Number.isFinite(p.us)).sort((a, b) => a.size - b.size || a.us - b.us);
}

/** The powers of ten from just below the smallest to just above the largest value (two at least; 1 and 10 for none). */
function decades(values: readonly number[]): number[] {
  if (values.length === 0) return [1, 10];
  const lo = Math.floor(Math.log10(Math.min(...values)));
  const hi = Math.max(Math.ceil(Math.log10(Math.max(...values))), lo + 1);
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
}

/** The Vega-Lite spec of the chart (exported for the tests). */
export function chartSpec(rows: readonly BenchRow[], contenders: readonly string[], caption: string): PlotSpec {
  const keys = ['engine', 'readback every iter', ...contenders, ...(rows.some((r) => r.layer === 'sequential') ? ['sequential'] : [])];
  const solvers = [...new Set(rows.map((r) => r.solver))];
  const points = pointsOf(rows, contenders);
  const xTicks = decades(points.map((p) => p.size));
  const yTicks = decades(points.map((p) => p.us));
  const logAxis = (ticks: number[]) => ({ type: 'log' as const, domain: [ticks[0], ticks[ticks.length - 1]] });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'µs per f-evaluation against problem size (log-log)', subtitle: caption },
    data: { values: points },
    facet: { column: { field: 'solver', type: 'nominal', sort: solvers, title: null, header: { labelFontSize: 13, labelFontWeight: 'bold' } } },
    spec: {
      width: 320,
      height: 240,
      mark: { type: 'line', point: { size: 30, filled: true }, strokeWidth: 2 },
      encoding: {
        x: { field: 'size', type: 'quantitative', scale: logAxis(xTicks), title: CHART_AXES.x, axis: { values: xTicks, format: '~s' } },
        y: { field: 'us', type: 'quantitative', scale: logAxis(yTicks), title: CHART_AXES.y, axis: { values: yTicks, format: '~s' } },
        color: {
          field: 'series',
          type: 'nominal',
          title: null,
          scale: { domain: keys.map(seriesName), range: keys.map((key, i) => SERIES[key]?.color ?? SPARE_COLORS[i % SPARE_COLORS.length]) },
        },
        tooltip: [
          { field: 'series', type: 'nominal' },
          { field: 'shape', type: 'nominal' },
          { field: 'us', type: 'quantitative', format: '.1f', title: 'µs' },
        ],
      },
    },
  };
}

/**
 * The chart as an SVG document: one panel per solver in `rows`, one line per contender with data
 * in that panel, a legend, and `caption` (adapter, date) under the title.
 */
export function renderChart(rows: readonly BenchRow[], contenders: readonly string[], caption: string): Promise<string> {
  return renderSvg(chartSpec(rows, contenders, caption));
}
