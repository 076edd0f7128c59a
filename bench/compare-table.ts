/**
 * The pure half of `npm run bench:compare` (bench/compare.ts): reading the JSON files of the
 * alternating runs, the per-row medians and ratios, the markdown table, and the check that the
 * base commit's bench CLI knows every flag passed to it.
 */

/** What the comparison reads of one row of a run's JSON (older commits' rows have no `layer`). */
export interface RunRow {
  solver: string;
  layer?: string;
  d: number;
  batch: number;
  tnstep: number;
  usPerEval: number;
}

/** What the comparison reads of one run's JSON file (bench/settings.ts writeResults). */
export interface RunFile {
  adapter: string;
  machine: string;
  loadAtStart: number;
  rows: RunRow[];
}

/** The numbers of one (solver, d, batch) row across the rounds. */
export interface ComparedRow {
  solver: string;
  d: number;
  batch: number;
  /** f-evaluations per solve: base's, working tree's (the same work unless the solver changed its counting). */
  tnstep: { base: number; work: number };
  /** Median over the rounds of each side's µs per f-evaluation. */
  baseUs: number;
  workUs: number;
  /** workUs / baseUs, and the lowest and highest ratio of one round's pair (base run i, working run i). */
  ratio: Range;
  /** The working tree's sequential row of the same problem, where it ran. */
  sequential: { us: number; perBlock: Range } | null;
}

/** A median with the extremes it was taken from. */
export interface Range {
  median: number;
  low: number;
  high: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function range(values: readonly number[], middle = median(values)): Range {
  return { median: middle, low: Math.min(...values), high: Math.max(...values) };
}

const rowKey = (r: Pick<RunRow, 'solver' | 'd' | 'batch'>) => `${r.solver}|${r.d}|${r.batch}`;

function rowsOf(run: RunFile, layer: string): Map<string, RunRow> {
  return new Map(run.rows.filter((r) => (r.layer ?? 'block') === layer).map((r) => [rowKey(r), r]));
}

/**
 * One row per block row of the base runs, in their order: base round i is paired with working
 * round i. Throws when the sides did not run the same rows (a flag one side ignored).
 */
export function compareRuns(base: readonly RunFile[], work: readonly RunFile[]): ComparedRow[] {
  if (base.length === 0 || base.length !== work.length) throw new Error(`compare: ${base.length} base runs against ${work.length} working-tree runs`);
  const baseRows = base.map((run) => rowsOf(run, 'block'));
  const workRows = work.map((run) => rowsOf(run, 'block'));
  const sequentialRows = work.map((run) => rowsOf(run, 'sequential'));
  const keys = [...baseRows[0].keys()];
  for (const [i, rows] of [...baseRows, ...workRows].entries()) {
    const side = i < base.length ? `base run ${i + 1}` : `working-tree run ${i - base.length + 1}`;
    if (rows.size !== keys.length || keys.some((key) => !rows.has(key))) {
      throw new Error(`compare: ${side} ran other rows (${[...rows.keys()].join(', ')}) than base run 1 (${keys.join(', ')})`);
    }
  }
  return keys.map((key) => {
    const b = baseRows.map((rows) => rows.get(key) as RunRow);
    const w = workRows.map((rows) => rows.get(key) as RunRow);
    const baseUs = median(b.map((r) => r.usPerEval));
    const workUs = median(w.map((r) => r.usPerEval));
    const seq = sequentialRows.map((rows) => rows.get(key));
    const ran = seq.every((r) => r !== undefined);
    return {
      solver: b[0].solver,
      d: b[0].d,
      batch: b[0].batch,
      tnstep: { base: b[0].tnstep, work: w[0].tnstep },
      baseUs,
      workUs,
      ratio: range(w.map((r, i) => r.usPerEval / b[i].usPerEval), workUs / baseUs),
      sequential: ran
        ? { us: median(seq.map((r) => (r as RunRow).usPerEval)), perBlock: range(seq.map((r, i) => (r as RunRow).usPerEval / w[i].usPerEval)) }
        : null,
    };
  });
}

const micros = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const times = (value: number) => `${value.toFixed(2)}×`;
const spread = (r: Range) => `${times(r.median)} (${r.low.toFixed(2)}–${r.high.toFixed(2)})`;

/** The table: one line per row, ratios as "median (lowest–highest round)". */
export function comparisonTable(rows: readonly ComparedRow[], baseName: string): string {
  const header = [
    'solver', 'd', 'batch', 'f-evals', `base ${baseName} µs/f-eval`, 'working tree µs/f-eval', 'working / base',
    'sequential µs/f-eval', 'sequential / block (same run)',
  ];
  const lines = rows.map((r) => {
    const evals = r.tnstep.base === r.tnstep.work ? `${r.tnstep.base}` : `${r.tnstep.base} vs ${r.tnstep.work}`;
    const seq = r.sequential ? [micros(r.sequential.us), spread(r.sequential.perBlock)] : ['—', '—'];
    return `| ${[r.solver, r.d, r.batch, evals, micros(r.baseUs), micros(r.workUs), spread(r.ratio), ...seq].join(' | ')} |`;
  });
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines].join('\n');
}

/** The worst (highest) working/base and sequential/block medians, for the summary line. */
export function worstRatios(rows: readonly ComparedRow[]): { block: ComparedRow | null; sequential: ComparedRow | null } {
  const worst = (list: ComparedRow[], of: (r: ComparedRow) => number) => list.reduce<ComparedRow | null>((a, r) => (a === null || of(r) > of(a) ? r : a), null);
  return {
    block: worst([...rows], (r) => r.ratio.median),
    sequential: worst(rows.filter((r) => r.sequential !== null), (r) => r.sequential?.perBlock.median ?? 0),
  };
}

/**
 * The `--name` flags in `args` that the bench CLI source `cliSource` (bench/run.ts and
 * bench/settings.ts of a commit) does not read: it ignores unknown flags, so passing one would
 * silently measure something else.
 */
export function unknownFlags(cliSource: string, args: readonly string[]): string[] {
  return args
    .filter((a) => a.startsWith('--') && a.length > 2)
    .map((a) => a.slice(2))
    .filter((name) => !cliSource.includes(`argument('${name}')`) && !cliSource.includes(`'--${name}'`));
}
