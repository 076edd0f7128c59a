/**
 * `npm run bench:browser [-- same flags as npm run bench]`: the same suite (bench/suite.ts), run
 * in headless /usr/bin/chromium through puppeteer-core against a page served on localhost; the
 * rows come back to Node, which prints and writes them as `npm run bench` does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInChromium } from '../test/helpers/browser';
import { runMain } from './cli';
import { benchSettings, machineName, writeResults } from './settings';
import { TABLE_HEADER, formatRow, type BenchRow } from './suite';

interface BrowserOutcome {
  adapter: string;
  rows: BenchRow[];
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
import { runSuite, standardCases } from '../suite';
export default async () => {
  const engine = await Engine.create();
  const info = engine.device.adapterInfo;
  const adapter = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' / ') || 'unknown adapter';
  const cases = standardCases(${JSON.stringify(settings.sizes)}, ${JSON.stringify(settings.batches)}, ${settings.depthScale});
  const rows = await runSuite(engine, cases, ${settings.repeats}, () => {}, ${JSON.stringify(settings.forwardKernel)}, ${settings.fused});
  engine.destroy();
  return { adapter, rows };
};
`,
  );
  console.log(`machine: ${machineName()}; running the suite in headless Chromium…`);
  const { result, consoleErrors } = await runInChromium<BrowserOutcome>(entry, { timeoutMs: TIMEOUT_MS });
  if (consoleErrors.length > 0) console.warn(`console errors in the page:\n${consoleErrors.join('\n')}`);
  console.log(`adapter: ${result.adapter}\n\n${TABLE_HEADER}\n${result.rows.map(formatRow).join('\n')}`);
  writeResults(result.rows, settings, result.adapter, 'headless Chromium');
}

runMain(main);
