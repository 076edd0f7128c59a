/**
 * What `npm run bench` and `npm run bench:browser` share: the command-line settings and the
 * writing of results (JSON under bench/results/ or --out, a table appended to RESULTS.md).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ForwardKernelChoice } from '../src';
import { argument } from './cli';
import { TABLE_HEADER, formatRow, type BenchRow } from './suite';

export interface BenchSettings {
  sizes: number[];
  batches: number[];
  repeats: number;
  /** Fraction of the standard iteration counts (`--quick`: 0.25, for SwiftShader). */
  depthScale: number;
  forwardKernel: ForwardKernelChoice;
  fused: boolean;
  outDir?: string;
  write: boolean;
}

const list = (value: string | undefined, fallback: number[]) => (value ? value.split(',').map(Number) : fallback);

/** `[--quick] [--sizes 256,1024] [--batches 1,64] [--repeats N] [--forward K] [--fused off] [--out DIR] [--no-write]` */
export function benchSettings(): BenchSettings {
  const quick = process.argv.includes('--quick');
  return {
    sizes: list(argument('sizes'), [256, 1024]),
    batches: list(argument('batches'), [1, 64]),
    repeats: Number(argument('repeats') ?? (quick ? 3 : 7)),
    depthScale: quick ? 0.25 : 1,
    forwardKernel: (argument('forward') ?? 'auto') as ForwardKernelChoice,
    fused: argument('fused') !== 'off',
    outDir: argument('out'),
    write: !process.argv.includes('--no-write'),
  };
}

/** This machine, for the results' header. */
export function machineName(): string {
  return `${hostname()}, ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}`;
}

/** Writes the JSON file and appends the markdown table (unless --no-write). */
export function writeResults(rows: BenchRow[], settings: BenchSettings, adapter: string, where: string): void {
  if (!settings.write) return;
  const stamp = new Date().toISOString();
  const machine = machineName();
  const dir = settings.outDir ? `${settings.outDir}/` : fileURLToPath(new URL('./results/', import.meta.url));
  const resultsMd = settings.outDir ? `${settings.outDir}/RESULTS.md` : fileURLToPath(new URL('./RESULTS.md', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const { repeats, forwardKernel, fused } = settings;
  writeFileSync(`${dir}solvers-${stamp.replace(/[:.]/g, '-')}.json`, JSON.stringify({ stamp, where, adapter, machine, repeats, rows }, null, 2));
  appendFileSync(
    resultsMd,
    `\n## ${stamp.slice(0, 16).replace('T', ' ')} UTC — ${adapter} (${where})\n\nMachine: ${machine}. Median of ${repeats} solves after a warm-up; eps = 0 (fixed work); forward kernel: ${forwardKernel}; fused picard: ${fused}.\n\n${TABLE_HEADER}\n${rows.map(formatRow).join('\n')}\n`,
  );
}
