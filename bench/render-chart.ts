/**
 * `vite-node bench/render-chart.ts RESULTS_JSON [OUT_SVG]`: draws the chart of a results file
 * written by `npm run bench` (e.g. one brought back from a GPU machine) again, to OUT_SVG or
 * beside the JSON with .svg for .json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderChart } from './chart';
import { runMain } from './cli';
import type { BenchRow } from './suite';

interface ResultsFile {
  stamp: string;
  where: string;
  adapter: string;
  contenders?: Record<string, string>;
  rows: BenchRow[];
}

async function main(): Promise<void> {
  const [input, output] = process.argv.slice(2).filter((a) => a !== '--');
  if (!input) throw new Error('usage: vite-node bench/render-chart.ts RESULTS_JSON [OUT_SVG]');
  const results = JSON.parse(readFileSync(input, 'utf8')) as ResultsFile;
  // Files from before the contenders existed have rows without them.
  const rows = results.rows.map((r) => ({ ...r, contenders: r.contenders ?? {} }));
  const caption = `${results.adapter} (${results.where}), ${results.stamp.slice(0, 16).replace('T', ' ')} UTC`;
  const target = output ?? input.replace(/\.json$/, '.svg');
  writeFileSync(target, await renderChart(rows, Object.keys(results.contenders ?? {}), caption));
  console.log(`wrote ${target}`);
}

runMain(main);
