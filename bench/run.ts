/**
 * `npm run bench [-- --quick] [--sizes 256,1024] [--batches 1,64] [--repeats 5] [--forward auto|tiled|split-k|matmul] [--fused off] [--out DIR] [--no-write]`
 * Runs the suite on Dawn in Node, prints a markdown table, writes JSON to bench/results/ (or DIR)
 * and appends the table to bench/RESULTS.md (or DIR/RESULTS.md) with the date, adapter and machine.
 * `--quick` (for SwiftShader, a CPU) runs fewer iterations per solve and fewer repeats.
 */
import { Engine } from '../src';
import { adapterName, runMain } from './cli';
import { benchSettings, machineName, writeResults } from './settings';
import { TABLE_HEADER, runSuite, standardCases } from './suite';

async function main(): Promise<void> {
  const settings = benchSettings();
  const engine = await Engine.create();
  const adapter = adapterName(engine);
  console.log(`adapter: ${adapter}\nmachine: ${machineName()}\nforward kernel: ${settings.forwardKernel}, fused picard: ${settings.fused}\n`);
  console.log(TABLE_HEADER);
  const cases = standardCases(settings.sizes, settings.batches, settings.depthScale);
  const rows = await runSuite(engine, cases, settings.repeats, (line) => console.log(line), settings.forwardKernel, settings.fused);
  writeResults(rows, settings, adapter, 'Node, Dawn');
  engine.destroy();
}

runMain(main);
