/**
 * `npm run bench:browser [-- same flags as npm run bench]`: the same suite (bench/suite.ts) and
 * contenders (TF.js on the page's own WebGPU, the CPU loop), run in headless /usr/bin/chromium
 * through puppeteer-core against a page served on localhost; the rows come back to Node, which
 * prints and writes them as `npm run bench` does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInChromium } from '../test/helpers/browser';
import { runMain } from './cli';
import { benchSettings, machineName, writeResults } from './settings';
import type { BenchRow } from './suite';
import { formatTable } from './table';

interface BrowserOutcome {
  adapter: string;
  rows: BenchRow[];
  contenders: Record<string, string>;
  timestamps: boolean;
}

/** Long enough for the full suite on SwiftShader. */
const TIMEOUT_MS = 60 * 60 * 1000;

async function main(): Promise<void> {
  const settings = benchSettings();
  // The page's entry, with this run's settings baked in (bench/dist is git-ignored).
  const dir = fileURLToPath(new URL('./dist/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const entry = `${dir}browser-entry.ts`;
  writeFileSync(
    entry,
    `import { Engine } from '../../src';
import { describe, startContenders } from '../contenders/start';
import { runSuite, standardCases } from '../suite';
import { hasTimestamps } from '../timestamps';
export default async () => {
  const engine = await Engine.create();
  const info = engine.device.adapterInfo;
  const adapter = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' / ') || 'unknown adapter';
  const contenders = await startContenders(${JSON.stringify(settings.contenders)}, ${JSON.stringify(settings.tfjsMatmul ?? null)} ?? undefined);
  const cases = standardCases(${JSON.stringify(settings.sizes)}, ${JSON.stringify(settings.batches)}, ${settings.depthScale}, ${JSON.stringify(settings.layers)});
  const rows = await runSuite(engine.device, cases, {
    repeats: ${settings.repeats}, forwardKernel: ${JSON.stringify(settings.forwardKernel)}, fused: ${settings.fused}, contenders,
  });
  const timestamps = hasTimestamps(engine);
  for (const c of contenders) c.dispose();
  engine.destroy();
  return { adapter, rows, contenders: describe(contenders), timestamps };
};
`,
  );
  console.log(`machine: ${machineName()}; running the suite in headless Chromium…`);
  const { result, consoleErrors } = await runInChromium<BrowserOutcome>(entry, { timeoutMs: TIMEOUT_MS });
  if (consoleErrors.length > 0) console.warn(`console errors in the page:\n${consoleErrors.join('\n')}`);
  console.log(`adapter: ${result.adapter}\n\n${formatTable(result.rows, Object.keys(result.contenders))}`);
  await writeResults({ ...result, where: 'headless Chromium', chartName: 'chart-chromium.svg' }, settings);
}

runMain(main);
