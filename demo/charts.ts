// Thin wrappers over uPlot for the page's live plots: data are appended as plain arrays and
// redrawn at most once per animation frame, so plotting never slows training down.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface SeriesSpec {
  label: string;
  stroke: string;
  /** Which y scale this series uses (default 'y'). */
  scale?: string;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  series: SeriesSpec[];
  /** Log-scaled y axis (residuals). */
  logY?: boolean;
  /** Fixed y range (accuracy in [0, 1]). */
  yRange?: [number, number];
  /** A second y scale with its own axis on the right (batch accuracy beside the loss). */
  right?: { scale: string; range: [number, number] };
  /** Draw points only (sparse series like held-out accuracy). */
  points?: boolean;
  /** Draw bars at each x (a value per category, e.g. per digit) instead of lines. */
  bars?: boolean;
}

const HEIGHT = 190;
/** Bars of series i, centred on their category: each later series narrower, drawn in front. */
const barsOf = (i: number) => uPlot.paths.bars?.({ size: [Math.max(0.2, 0.7 - 0.3 * i), 60] });

export class LiveChart {
  private readonly plot: uPlot;
  private readonly x: number[] = [];
  private readonly ys: (number | null)[][];
  private pending = false;

  constructor(container: HTMLElement, spec: ChartSpec) {
    this.ys = spec.series.map(() => []);
    const width = Math.max(240, container.clientWidth);
    const yScale: uPlot.Scale = spec.logY
      ? { distr: 3 }
      : spec.yRange
        ? { range: spec.yRange }
        : spec.bars
          ? { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, Math.max(1, max) * 1.1] }
          : {};
    this.plot = new uPlot(
      {
        title: spec.title,
        width,
        height: HEIGHT,
        // Steps and iterations are counts, not times.
        scales: { x: { time: false, ...(spec.bars ? { range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax => [min - 0.5, max + 0.5] } : {}) }, y: yScale, ...(spec.right ? { [spec.right.scale]: { range: spec.right.range } } : {}) },
        axes: [
          { label: spec.xLabel, size: 36 },
          { size: 50 },
          ...(spec.right ? [{ scale: spec.right.scale, side: 1, size: 40, grid: { show: false } }] : []),
        ],
        legend: { live: false },
        series: [
          { label: spec.xLabel },
          ...spec.series.map((s, i) => ({
            label: s.label,
            stroke: s.stroke,
            width: 1.5,
            scale: s.scale ?? 'y',
            points: { show: spec.points === true, size: 5 },
            ...(spec.bars ? { paths: barsOf(i), fill: `${s.stroke}${i === 0 ? '55' : 'cc'}` } : {}),
          })),
        ],
      },
      [[], ...spec.series.map(() => [])],
      container,
    );
  }

  /** Appends one x with one value per series. */
  push(x: number, values: number[]): void {
    this.x.push(x);
    values.forEach((v, i) => this.ys[i].push(v));
    this.schedule();
  }

  /** Replaces all data (the residual traces of the latest solves); null leaves a gap. */
  replace(x: number[], ys: (number | null)[][]): void {
    this.x.length = 0;
    this.x.push(...x);
    ys.forEach((y, i) => {
      this.ys[i].length = 0;
      this.ys[i].push(...y);
    });
    this.schedule();
  }

  clear(): void {
    this.replace([], this.ys.map(() => []));
  }

  /** Points currently plotted. */
  get length(): number {
    return this.x.length;
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData([this.x, ...this.ys] as uPlot.AlignedData);
    });
  }
}
