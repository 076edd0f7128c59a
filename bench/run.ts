/**
 * `npm run bench [-- --quick] [--sizes 256,1024] [--batches 1,64] [--repeats 5] [--forward auto|tiled|split-k|matmul] [--fused off] [--layers block,sequential] [--contenders tfjs,cpu|none] [--tfjs-matmul N] [--out DIR] [--no-write]`
 * Runs the suite on Dawn in Node with the contenders beside the engine (TF.js on its WebGPU
 * backend over Dawn, a plain CPU loop), prints a markdown table, writes JSON and an SVG chart to
 * bench/results/ (or DIR) and appends the table to bench/RESULTS.md (or DIR/RESULTS.md) with the
 * date, adapter and machine. `--layers block,sequential` adds, after each tanh-block row, the same
 * problem through `sequential(linear, add(Qd), tanh())`. `--quick` (for SwiftShader, a CPU) runs
 * fewer iterations and repeats.
 */
import { Engine } from '../src/node';
import { adapterName, runMain } from './cli';
import { exposeDawnAsNavigatorGpu } from './contenders/dawn-navigator';
import { describe, startContenders } from './contenders/start';
import { benchSettings, machineName, writeResults } from './settings';
import { runSuite, standardCases } from './suite';
import { tableHeader } from './table';
import { hasTimestamps } from './timestamps';

async function main(): Promise<void> {
  const settings = benchSettings();
  const engine = await Engine.create();
  const adapter = adapterName(engine);
  // The Dawn instance Engine.create() used (SwiftShader where there is no GPU).
  if (settings.contenders.includes('tfjs')) await exposeDawnAsNavigatorGpu();
  const contenders = await startContenders(settings.contenders, settings.tfjsMatmul);
  const names = contenders.map((c) => c.name);
  console.log(`adapter: ${adapter}\nmachine: ${machineName()}\nforward kernel: ${settings.forwardKernel}, fused picard: ${settings.fused}`);
  for (const c of contenders) console.log(`contender ${c.name}: ${c.description}`);
  console.log(`timestamp queries: ${hasTimestamps(engine) ? 'yes' : 'n/a'}\n\n${tableHeader(names)}`);
  const cases = standardCases(settings.sizes, settings.batches, settings.depthScale, settings.layers);
  const rows = await runSuite(engine.device, cases, {
    repeats: settings.repeats,
    log: (line) => console.log(line),
    forwardKernel: settings.forwardKernel,
    fused: settings.fused,
    contenders,
  });
  await writeResults(
    { rows, adapter, where: 'Node, Dawn', contenders: describe(contenders), timestamps: hasTimestamps(engine), chartName: 'chart.svg' },
    settings,
  );
  for (const c of contenders) c.dispose();
  engine.destroy();
}

runMain(main);
