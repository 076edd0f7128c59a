/**
 * The one way the repo's scripts draw plots (the benchmark chart, the MNIST training plot): a
 * Vega-Lite spec compiled to Vega and rendered to an SVG string by a headless Vega view in Node
 * (no DOM, no canvas: without the optional `canvas` package Vega estimates text widths from the
 * font size, so the same spec and data give the same layout on every machine).
 */
import { View, parse, Warn } from 'vega';
import { compile, type Config, type TopLevelSpec } from 'vega-lite';

/** A Vega-Lite spec (the top level of one plot). */
export type PlotSpec = TopLevelSpec;

/** The look every plot shares; each top-level key of a spec's own `config` (`legend`, `axis`…) replaces the one here. */
const BASE_CONFIG: Config = {
  background: 'white',
  font: 'sans-serif',
  padding: 12,
  title: { fontSize: 14, subtitleColor: '#555', subtitleFontSize: 11, anchor: 'start' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e4e4e4' },
  legend: { labelFontSize: 12, titleFontSize: 12, orient: 'bottom', direction: 'horizontal', columns: 2, labelLimit: 480, symbolStrokeWidth: 3 },
};

/** A logger for Vega-Lite and Vega that turns their warnings into errors: a plot that drops data or an encoding is a bug. */
function strictLogger(): NonNullable<NonNullable<Parameters<typeof compile>[1]>['logger']> {
  let level = Warn;
  const raise = (args: unknown[]): never => {
    // Vega reports a warning thrown while its dataflow runs again as an error: keep the first.
    if (args.length === 1 && args[0] instanceof Error && args[0].message.startsWith('plot spec: ')) throw args[0];
    throw new Error(`plot spec: ${args.map(String).join(' ')}`);
  };
  const logger = {
    level(value?: number) {
      if (value === undefined) return level;
      level = value;
      return logger;
    },
    error(...args: unknown[]) {
      return raise(args);
    },
    warn(...args: unknown[]) {
      return raise(args);
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return logger;
}

/**
 * Renders `spec` to a standalone SVG document (ends with a newline). Warnings from Vega-Lite or
 * Vega (an unknown field, a channel that does not apply) are thrown as errors.
 */
export async function renderSvg(spec: PlotSpec): Promise<string> {
  const logger = strictLogger();
  const config: Config = { ...BASE_CONFIG, ...spec.config };
  const vegaSpec = compile({ ...spec, config }, { logger }).spec;
  const view = new View(parse(vegaSpec), { renderer: 'none', logger, logLevel: Warn });
  try {
    const svg = await view.toSVG();
    return svg.endsWith('\n') ? svg : `${svg}\n`;
  } finally {
    view.finalize();
  }
}
