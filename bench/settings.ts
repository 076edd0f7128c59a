/**
 * What `npm run bench` and `npm run bench:browser` share: the command-line settings and the
 * writing of results (JSON under bench/results/ or --out, a table appended to RESULTS.md, an SVG
 * chart beside the JSON and as bench/chart.svg).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ForwardKernelChoice } from '../src';
import { renderChart } from './chart';
import { argument } from './cli';
import { BENCH_LAYERS, type BenchLayer, type BenchRow } from './suite';
import { formatTable } from './table';

/** Contenders the suite knows how to start. */
export type ContenderName = 'tfjs' | 'cpu';

export interface BenchSettings {
  sizes: number[];
  batches: number[];
  repeats: number;
  /** Fraction of the standard iteration counts (`--quick`: 0.25, for SwiftShader). */
  depthScale: number;
  forwardKernel: ForwardKernelChoice;
  fused: boolean;
  /** How f is built, each case once per layer (`--layers block,sequential`; default block). */
  layers: BenchLayer[];
  /** Contenders to run beside the engine (`--contenders tfjs,cpu`, `none`). */
  contenders: ContenderName[];
  /** TF.js's WEBGPU_MATMUL_PROGRAM_TYPE (`--tfjs-matmul N`); unset keeps TF.js's choice. */
  tfjsMatmul?: number;
  outDir?: string;
  write: boolean;
  /** The 1-minute load average when the run started: other work on a shared machine skews times. */
  loadAtStart: number;
}

/** What one run produced, as written to JSON and RESULTS.md. */
export interface BenchReport {
  rows: BenchRow[];
  adapter: string;
  where: string;
  /** Contender name → description, in column order. */
  contenders: Record<string, string>;
  timestamps: boolean;
  /** Name of the stable copy of the latest chart (bench/chart.svg for Node, chart-chromium.svg). */
  chartName: string;
}

const list = (value: string | undefined, fallback: number[]) => (value ? value.split(',').map(Number) : fallback);

function contenderList(value: string | undefined): ContenderName[] {
  if (value === undefined) return ['tfjs', 'cpu'];
  if (value === 'none') return [];
  const names = value.split(',');
  for (const name of names) {
    if (name !== 'tfjs' && name !== 'cpu') throw new Error(`--contenders: unknown contender ${name} (tfjs, cpu or none)`);
  }
  return names as ContenderName[];
}

function layerList(value: string | undefined): BenchLayer[] {
  if (value === undefined) return ['block'];
  const names = value.split(',');
  for (const name of names) {
    if (!(BENCH_LAYERS as readonly string[]).includes(name)) throw new Error(`--layers: unknown layer ${name} (${BENCH_LAYERS.join(', ')})`);
  }
  return BENCH_LAYERS.filter((layer) => names.includes(layer));
}

/**
 * `[--quick] [--sizes 256,1024] [--batches 1,64] [--repeats N] [--forward K] [--fused off]
 * [--layers block,sequential] [--contenders tfjs,cpu|none] [--tfjs-matmul N] [--out DIR] [--no-write]`
 */
export function benchSettings(): BenchSettings {
  const quick = process.argv.includes('--quick');
  const tfjsMatmul = argument('tfjs-matmul');
  return {
    sizes: list(argument('sizes'), [256, 1024]),
    batches: list(argument('batches'), [1, 64]),
    repeats: Number(argument('repeats') ?? (quick ? 3 : 7)),
    depthScale: quick ? 0.25 : 1,
    forwardKernel: (argument('forward') ?? 'auto') as ForwardKernelChoice,
    fused: argument('fused') !== 'off',
    layers: layerList(argument('layers')),
    contenders: contenderList(argument('contenders')),
    tfjsMatmul: tfjsMatmul === undefined ? undefined : Number(tfjsMatmul),
    outDir: argument('out'),
    write: !process.argv.includes('--no-write'),
    loadAtStart: loadavg()[0],
  };
}

/** This machine, for the results' header. */
export function machineName(): string {
  return `${hostname()}, ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}`;
}

/** What a `· sequential` row is, for the results' header. */
const SEQUENTIAL_NOTE =
  'Rows marked "· sequential" solve the same problem (weight, bias, Qd, solver, depth) through ' +
  '`sequential(linear(engine, { weight, bias }), add(Qd), tanh())` instead of `implicitBlock`; contenders run on the block rows only.';

/** The markdown section of one run. */
export function reportMarkdown(report: BenchReport, settings: BenchSettings, stamp: string, chartPath: string): string {
  const { repeats, forwardKernel, fused } = settings;
  const names = Object.keys(report.contenders);
  const contenders = names.length > 0 ? names.map((name) => `${name}: ${report.contenders[name]}`).join('; ') : 'none';
  return (
    `\n## ${stamp.slice(0, 16).replace('T', ' ')} UTC — ${report.adapter} (${report.where})\n\n` +
    `Machine: ${machineName()}, load average ${settings.loadAtStart.toFixed(1)} at the start. Median of ${repeats} solves after two warm-up solves; eps = 0 (fixed work); ` +
    `forward kernel: ${forwardKernel}; fused picard: ${fused}. Contenders (same problem, same iterations): ${contenders}. ` +
    `Ratios are the contender's µs/f-eval over the engine's. Timestamp queries: ${report.timestamps ? 'yes' : 'not offered by this device (n/a)'}.` +
    (report.rows.some((r) => r.layer === 'sequential') ? ` ${SEQUENTIAL_NOTE}` : '') +
    '\n\n' +
    `${formatTable(report.rows, names)}\n\n![µs per f-evaluation against problem size](${chartPath})\n`
  );
}

/** Writes the JSON file, the chart, and appends the markdown table (unless --no-write). */
export async function writeResults(report: BenchReport, settings: BenchSettings): Promise<void> {
  if (!settings.write) return;
  const stamp = new Date().toISOString();
  const file = stamp.replace(/[:.]/g, '-');
  const benchDir = fileURLToPath(new URL('./', import.meta.url));
  const dir = settings.outDir ? `${settings.outDir}/` : `${benchDir}results/`;
  const resultsMd = settings.outDir ? `${settings.outDir}/RESULTS.md` : `${benchDir}RESULTS.md`;
  mkdirSync(dir, { recursive: true });
  const { repeats, forwardKernel, fused, layers } = settings;
  writeFileSync(
    `${dir}solvers-${file}.json`,
    JSON.stringify({ stamp, where: report.where, adapter: report.adapter, machine: machineName(), loadAtStart: settings.loadAtStart, repeats, forwardKernel, fused, layers, contenders: report.contenders, timestamps: report.timestamps, rows: report.rows }, null, 2),
  );
  const chart = await renderChart(report.rows, Object.keys(report.contenders), `${report.adapter} (${report.where}), ${stamp.slice(0, 16).replace('T', ' ')} UTC`);
  writeFileSync(`${dir}chart-${file}.svg`, chart);
  // The stable copy README shows: the latest run's chart of this environment.
  writeFileSync(settings.outDir ? `${dir}${report.chartName}` : `${benchDir}${report.chartName}`, chart);
  appendFileSync(resultsMd, reportMarkdown(report, settings, stamp, settings.outDir ? `chart-${file}.svg` : `results/chart-${file}.svg`));
}
