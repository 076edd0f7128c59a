/**
 * The training plot the CLI writes next to the saved model: a Vega-Lite spec rendered to SVG by
 * bench/vega.ts. Two panels over the step number: the training loss, and the accuracy (of the
 * training batches and on the held-out digits).
 */
import { renderSvg, type PlotSpec } from '../../bench/vega';

/** One measured training step (its batch's loss and, where measured, accuracy). */
export interface PlotPoint {
  step: number;
  loss: number;
  /** In [0, 1]; left out of the plot when undefined. */
  accuracy?: number;
}

/** One evaluation on the held-out digits, after `step` steps. */
export interface HeldOutPoint {
  step: number;
  /** In [0, 1]. */
  accuracy: number;
}

/** Legend names and colours of the plot's three series (the tests look for the names). */
export const PLOT_SERIES = {
  loss: { name: 'training loss (batch)', color: '#c0392b' },
  trainAccuracy: { name: 'training accuracy (batch)', color: '#7fb3d5' },
  heldOut: { name: 'held-out accuracy', color: '#1a5276' },
} as const;

/** Axis titles (the tests look for them). */
export const PLOT_AXES = { step: 'training step', loss: 'loss (cross-entropy)', accuracy: 'accuracy' } as const;

const PANEL = { width: 640, height: 200 };

/** The Vega-Lite spec of the plot (exported for the tests). Steps with a non-finite loss are left out and counted in the subtitle. */
export function plotSpec(points: readonly PlotPoint[], heldOut: readonly HeldOutPoint[], title: string): PlotSpec {
  const finite = points.filter((p) => Number.isFinite(p.loss));
  const dropped = points.length - finite.length;
  const withAccuracy = finite.filter((p) => p.accuracy !== undefined && Number.isFinite(p.accuracy));
  const maxStep = Math.max(1, ...points.map((p) => p.step), ...heldOut.map((p) => p.step));
  // The batch accuracy is in the legend only where it was measured (the MDEQ example has none).
  const series = withAccuracy.length > 0 ? Object.values(PLOT_SERIES) : [PLOT_SERIES.loss, PLOT_SERIES.heldOut];
  const values = [
    ...finite.map((p) => ({ step: p.step, series: PLOT_SERIES.loss.name, value: p.loss })),
    ...withAccuracy.map((p) => ({ step: p.step, series: PLOT_SERIES.trainAccuracy.name, value: p.accuracy })),
    ...heldOut.map((p) => ({ step: p.step, series: PLOT_SERIES.heldOut.name, value: p.accuracy })),
  ];
  const x = { field: 'step', type: 'quantitative' as const, title: PLOT_AXES.step, scale: { domain: [0, maxStep], nice: false }, axis: { tickMinStep: 1 } };
  const color = { field: 'series', type: 'nominal' as const, title: null, scale: { domain: series.map((s) => s.name), range: series.map((s) => s.color) } };
  const only = (name: string) => ({ filter: { field: 'series', equal: name } });
  const last = heldOut.length > 0 ? heldOut[heldOut.length - 1] : undefined;
  const subtitle = [
    `${finite.length} measured ${finite.length === 1 ? 'step' : 'steps'} of ${maxStep}`,
    last ? `held-out accuracy ${(100 * last.accuracy).toFixed(2)} % after step ${last.step}` : 'no held-out evaluation',
    ...(dropped > 0 ? [`${dropped} ${dropped === 1 ? 'step' : 'steps'} with a non-finite loss not drawn`] : []),
  ].join('; ');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    data: { values },
    vconcat: [
      {
        name: 'loss',
        width: PANEL.width,
        height: PANEL.height,
        transform: [only(PLOT_SERIES.loss.name)],
        // A single measurement is no line: draw it as a point then.
        mark: { type: 'line', strokeWidth: 1.5, point: finite.length === 1 },
        encoding: {
          x: { ...x, axis: { title: null, tickMinStep: 1 } },
          y: { field: 'value', type: 'quantitative', title: PLOT_AXES.loss, scale: finite.length > 0 ? { zero: true } : { domain: [0, 1] } },
          color,
        },
      },
      {
        width: PANEL.width,
        height: PANEL.height,
        layer: [
          {
            name: 'trainAccuracy',
            transform: [only(PLOT_SERIES.trainAccuracy.name)],
            mark: { type: 'line', strokeWidth: 1.5, point: withAccuracy.length === 1 },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: PLOT_AXES.accuracy, scale: { domain: [0, 1] }, axis: { format: '.0%' } },
              color,
            },
          },
          {
            name: 'heldOut',
            transform: [only(PLOT_SERIES.heldOut.name)],
            mark: { type: 'line', strokeWidth: 2.5, point: { size: 50, filled: true } },
            encoding: { x, y: { field: 'value', type: 'quantitative' }, color },
          },
          {
            name: 'heldOutLabel',
            transform: [only(PLOT_SERIES.heldOut.name)],
            mark: { type: 'text', dy: 14, fontSize: 11, color: PLOT_SERIES.heldOut.color },
            encoding: { x, y: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: '.1%' } },
          },
        ],
      },
    ],
  };
}

/**
 * An SVG document: the training loss per measured step (top), the batch accuracy per measured
 * step and the held-out accuracy per evaluation (bottom, each labelled), with a legend.
 */
export function plotSvg(points: readonly PlotPoint[], heldOut: readonly HeldOutPoint[], title: string): Promise<string> {
  return renderSvg(plotSpec(points, heldOut, title));
}
