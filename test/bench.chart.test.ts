// The benchmark's SVG chart and table are written by hand (no chart library): check the document
// is well-formed, has one line per contender and panel, and the table has a cell per column.
import { describe, expect, it } from 'vitest';
import { renderChart } from '../bench/chart';
import type { BenchRow } from '../bench/suite';
import { formatRow, tableHeader } from '../bench/table';

function row(solver: BenchRow['solver'], d: number, batch: number, withContenders: boolean): BenchRow {
  const us = d * (batch + 1);
  return {
    solver, d, batch, maxDepth: 16, msPerSolve: us * 0.017, usPerEval: us, usPerEvalReadbackEvery: 3 * us, speedup: 3,
    tnstep: 17, readbacks: 1, peakBytes: 4096, forwardKernelUs: null,
    throughput: { unit: batch > 1 ? 'GFLOP/s' : 'GB/s', perEval: 1.5, kernel: null },
    contenders: withContenders
      ? { tfjs: { usPerEval: 10 * us, tnstep: 17, ratio: 10 }, cpu: { usPerEval: us / 50, tnstep: 17, ratio: 0.02 } }
      : { tfjs: null, cpu: null },
  };
}

const rows: BenchRow[] = [
  row('picard', 64, 1, true), row('picard', 256, 1, true), row('picard', 256, 64, true),
  row('anderson', 64, 1, true), row('anderson', 256, 1, true),
  row('broyden', 64, 1, false), row('broyden', 256, 1, false),
];

describe('bench chart and table', () => {
  it('renders a well-formed SVG with one polyline per contender and panel', () => {
    const svg = renderChart(rows, ['tfjs', 'cpu'], 'SwiftShader <test> & co');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    // Every element that opens is closed (a cheap well-formedness check without an XML parser).
    const opened = (svg.match(/<(g|svg|circle)\b[^>]*[^/]>/g) ?? []).length;
    const closed = (svg.match(/<\/(g|svg|circle)>/g) ?? []).length;
    expect(opened).toBe(closed);
    expect(svg).toContain('&lt;test&gt; &amp; co');
    const lines = (panel: string) => {
      const body = svg.split(`data-solver="${panel}"`)[1].split('</g>')[0];
      return [...body.matchAll(/data-series="([^"]+)"/g)].map((m) => m[1]);
    };
    expect(lines('picard')).toEqual(['engine', 'readback every iter', 'tfjs', 'cpu']);
    expect(lines('anderson')).toEqual(['engine', 'readback every iter', 'tfjs', 'cpu']);
    expect(lines('broyden')).toEqual(['engine', 'readback every iter']); // no contender runs Broyden
    for (const [, points] of svg.matchAll(/points="([^"]*)"/g)) {
      for (const pair of points.split(' ')) expect(pair).toMatch(/^\d+(\.\d)?,\d+(\.\d)?$/);
    }
  });

  it('formats a table row with one cell per header column and "—" where a contender did not run', () => {
    const header = tableHeader(['tfjs', 'cpu']).split('\n')[0];
    const cells = (line: string) => line.split('|').length;
    expect(cells(formatRow(rows[0], ['tfjs', 'cpu']))).toBe(cells(header));
    const broydenRow = formatRow(rows[5], ['tfjs', 'cpu']);
    expect(broydenRow).toContain('| — | — | — | — |');
    expect(formatRow(rows[0], ['tfjs', 'cpu'])).toContain('0.020×');
  });
});
