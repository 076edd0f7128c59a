/** The markdown table of the suite's rows: one column per contender, ratios against each. */
import type { BenchRow } from './suite';

/** Display names of the contenders' columns. */
const LABELS: Record<string, string> = { tfjs: 'TF.js WebGPU', cpu: 'CPU loop' };

function label(name: string): string {
  return LABELS[name] ?? name;
}

const fixed = (value: number, digits: number) => value.toFixed(digits);
const micros = (value: number) => (value >= 100 ? fixed(value, 0) : fixed(value, 1));
/** A ratio with two significant digits at least (a CPU loop can be 100× faster on SwiftShader). */
const ratio = (value: number) => `${value >= 1 ? fixed(value, 2) : value.toPrecision(2)}×`;

function rate(value: number | null): string {
  if (value === null) return 'n/a';
  return value >= 10 ? fixed(value, 1) : value.toPrecision(2);
}

/** The header for these contenders (`names` in column order). */
export function tableHeader(names: readonly string[]): string {
  const columns = [
    'solver', 'd', 'batch', 'f-evals', 'ms/solve', 'µs/f-eval',
    'readback every iter µs/f-eval', 'ratio',
    ...names.flatMap((name) => [`${label(name)} µs/f-eval`, 'ratio']),
    'readbacks/solve', 'peak GPU MiB', 'fwd kernel µs (timestamps)', 'fwd GB/s or GFLOP/s (per f-eval · kernel)',
  ];
  return `| ${columns.join(' | ')} |\n|${columns.map(() => '---').join('|')}|`;
}

/** One row; a contender that did not run shows "—". */
export function formatRow(r: BenchRow, names: readonly string[]): string {
  const contenderCells = names.flatMap((name) => {
    const figures = r.contenders[name];
    return figures ? [micros(figures.usPerEval), ratio(figures.ratio)] : ['—', '—'];
  });
  const t = r.throughput;
  const cells = [
    r.layer === 'sequential' ? `${r.solver} · sequential` : r.solver, r.d, r.batch, r.tnstep, fixed(r.msPerSolve, 2), micros(r.usPerEval),
    micros(r.usPerEvalReadbackEvery), ratio(r.speedup),
    ...contenderCells,
    fixed(r.readbacks, 0), fixed(r.peakBytes / 2 ** 20, 2),
    r.forwardKernelUs === null ? 'n/a' : micros(r.forwardKernelUs),
    `${rate(t.perEval)} · ${rate(t.kernel)} ${t.unit}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

/** Header and rows. */
export function formatTable(rows: readonly BenchRow[], names: readonly string[]): string {
  return [tableHeader(names), ...rows.map((r) => formatRow(r, names))].join('\n');
}
