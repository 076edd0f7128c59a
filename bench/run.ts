/**
 * `npm run bench [-- --quick] [--sizes 256,1024] [--batches 1,64] [--repeats 5] [--forward auto|tiled|split-k|matmul] [--fused off] [--out DIR] [--no-write]`
 * Runs the suite on Dawn in Node, prints a markdown table, writes JSON to bench/results/ (or DIR)
 * and appends the table to bench/RESULTS.md (or DIR/RESULTS.md) with the date, adapter and machine.
 * `--quick` (for SwiftShader, a CPU) runs fewer iterations per solve and fewer repeats.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Engine, type ForwardKernelChoice } from '../src';
import { adapterName, argument, runMain } from './cli';
import { TABLE_HEADER, formatRow, runSuite, standardCases } from './suite';

const list = (value: string | undefined, fallback: number[]) => (value ? value.split(',').map(Number) : fallback);

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const sizes = list(argument('sizes'), [256, 1024]);
  const batches = list(argument('batches'), [1, 64]);
  const repeats = Number(argument('repeats') ?? (quick ? 3 : 7));
  const depthScale = quick ? 0.25 : 1;
  const outDir = argument('out');
  const forwardKernel = (argument('forward') ?? 'auto') as ForwardKernelChoice;
  const fused = argument('fused') !== 'off';
  const engine = await Engine.create();
  const adapter = adapterName(engine);
  const machine = `${hostname()}, ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}`;
  console.log(`adapter: ${adapter}\nmachine: ${machine}\nforward kernel: ${forwardKernel}, fused picard: ${fused}\n`);
  console.log(TABLE_HEADER);
  const rows = await runSuite(engine, standardCases(sizes, batches, depthScale), repeats, (line) => console.log(line), forwardKernel, fused);
  const stamp = new Date().toISOString();
  if (!process.argv.includes('--no-write')) {
    const dir = outDir ? `${outDir}/` : fileURLToPath(new URL('./results/', import.meta.url));
    const resultsMd = outDir ? `${outDir}/RESULTS.md` : fileURLToPath(new URL('./RESULTS.md', import.meta.url));
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}solvers-${stamp.replace(/[:.]/g, '-')}.json`, JSON.stringify({ stamp, adapter, machine, repeats, rows }, null, 2));
    const table = rows.map(formatRow);
    appendFileSync(
      resultsMd,
      `\n## ${stamp.slice(0, 16).replace('T', ' ')} UTC — ${adapter}\n\nMachine: ${machine}. Median of ${repeats} solves after a warm-up; eps = 0 (fixed work); forward kernel: ${forwardKernel}; fused picard: ${fused}.\n\n${TABLE_HEADER}\n${table.join('\n')}\n`,
    );
  }
  engine.destroy();
}

runMain(main);
