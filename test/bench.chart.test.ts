// The benchmark's chart (a Vega-Lite spec rendered to SVG by bench/vega.ts) and its markdown
// table: the SVG is read back as XML and checked for its panels, lines, points, axes and legend;
// the table has a cell per column.
import { describe, expect, it } from 'vitest';
import { CHART_AXES, renderChart, seriesName } from '../bench/chart';
import type { BenchRow } from '../bench/suite';
import { formatRow, tableHeader } from '../bench/table';
import { findAll, hasClass, parseXml, textsOf, type XmlElement } from './helpers/svg';

function row(solver: BenchRow['solver'], d: number, batch: number, withContenders: boolean, layer: BenchRow['layer'] = 'block'): BenchRow {
  const us = d * (batch + 1);
  return {
    solver, layer, d, batch, maxDepth: 16, msPerSolve: us * 0.017, usPerEval: us, usPerEvalReadbackEvery: 3 * us, speedup: 3,
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
  it('renders one panel per solver, one line with a point per row for each contender that ran, axes and a legend', async () => {
    const svg = await renderChart(rows, ['tfjs', 'cpu'], 'SwiftShader <test> & co');
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    expect(root.attributes.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(textsOf(root, 'role-title')).toEqual(['picard', 'anderson', 'broyden', expect.stringContaining('µs per f-evaluation'), 'SwiftShader <test> & co']);
    const names = ['engine', 'readback every iter', 'tfjs', 'cpu'].map(seriesName);
    expect(names).toEqual(['this engine (GPU-resident)', 'this engine, reading back every iteration', 'TF.js WebGPU', 'CPU loop (TS)']);
    expect(textsOf(root, 'role-legend-label')).toEqual(names);
    const axisTitles = textsOf(root, 'role-axis-title');
    expect(axisTitles.filter((t) => t === CHART_AXES.x)).toHaveLength(3);
    expect(axisTitles).toContain(CHART_AXES.y);
    // Log axes labelled at the powers of ten around the data: y from the CPU's 2·64/50 = 2.56 µs to
    // TF.js's 10·256·65 = 166,400 µs (one shared axis), x from 2·64² = 8,192 to 2·64·256² ≈ 8.4e6 (per panel).
    const x = ['1k', '10k', '100k', '1M', '10M'];
    expect(textsOf(root, 'role-axis-label')).toEqual(['1', '10', '100', '1k', '10k', '100k', '1M', ...x, ...x, ...x]);
    const [cells] = findAll(root, (e) => hasClass(e, 'role-scope', 'cell'));
    const panels = cells.children;
    expect(panels).toHaveLength(3);
    // Legend entry → its symbol's colour; every line is drawn in the colour of the series it names.
    const legendColors = findAll(root, (e) => hasClass(e, 'role-legend-symbol')).map((g) => g.children[0].attributes.fill);
    const colorOf = new Map(names.map((name, i) => [name, legendColors[i]]));
    expect(new Set(legendColors).size).toBe(4);
    const paths = (group: XmlElement) => findAll(group, (e) => e.name === 'path');
    const lineMarks = (panel: XmlElement) => findAll(panel, (e) => hasClass(e, 'mark-line', 'role-mark')).map((g) => paths(g)[0]);
    const lines = (panel: XmlElement) =>
      lineMarks(panel)
        .map((path) => {
          const series = /series: ([^;]+);/.exec(path.attributes['aria-label'])?.[1] ?? '?';
          expect(path.attributes.stroke).toBe(colorOf.get(series));
          return series;
        })
        .sort();
    const points = (panel: XmlElement) => findAll(panel, (e) => hasClass(e, 'mark-symbol', 'role-mark')).flatMap(paths);
    expect(lines(panels[0])).toEqual([...names].sort());
    expect(lines(panels[1])).toEqual([...names].sort());
    expect(lines(panels[2])).toEqual(names.slice(0, 2).sort()); // no contender runs Broyden
    expect(points(panels[0])).toHaveLength(3 * 4);
    expect(points(panels[1])).toHaveLength(2 * 4);
    expect(points(panels[2])).toHaveLength(2 * 2);
    // Each line passes through its points in order of problem size: one vertex per row.
    const vertices = (panel: XmlElement) => lineMarks(panel).map((path) => (path.attributes.d.match(/[ML]/g) ?? []).length);
    expect(vertices(panels[0])).toEqual([3, 3, 3, 3]);
    expect(vertices(panels[2])).toEqual([2, 2]);
    // The CPU point of picard, d = 256, batch = 64: 256·65 / 50 µs.
    expect(points(panels[0]).some((p) => /series: CPU loop \(TS\); .*shape: d=256, batch=64; µs: 332\.8/.test(p.attributes['aria-label']))).toBe(true);
  });

  it('renders an empty chart (no rows) and leaves out points a log axis cannot show', async () => {
    expect(textsOf(parseXml(await renderChart([], [], 'nothing ran')), 'role-title-subtitle')).toEqual(['nothing ran']);
    const failed = { ...row('picard', 64, 1, false), usPerEvalReadbackEvery: Number.NaN };
    const root = parseXml(await renderChart([failed], [], 'one row'));
    const lines = findAll(root, (e) => hasClass(e, 'mark-line', 'role-mark'));
    expect(lines.map((g) => g.children[0].attributes['aria-label'])).toEqual([expect.stringContaining('series: this engine (GPU-resident);')]);
  });

  it('reads the SVG strictly: malformed markup fails the checks above', () => {
    expect(parseXml('<svg><g a="1"/><text>a &amp; b</text></svg>').children.map((e) => e.name)).toEqual(['g', 'text']);
    for (const bad of ['<svg><g></svg>', '<svg><text>a & b</text></svg>', '<svg a=1></svg>', '<svg></svg><svg></svg>', '<svg>', '<svg a="1" a="2"></svg>']) {
      expect(() => parseXml(bad), bad).toThrow(/^xml: /);
    }
  });

  it('draws sequential rows as one line of their own (resident only) and labels them in the table', async () => {
    const sequentialRows = [row('picard', 64, 1, false, 'sequential'), row('picard', 256, 1, false, 'sequential')].map((r) => ({ ...r, usPerEval: 7 * r.usPerEval }));
    const root = parseXml(await renderChart([rows[0], sequentialRows[0], rows[1], sequentialRows[1]], ['tfjs', 'cpu'], 'with sequential'));
    const sequentialName = seriesName('sequential');
    expect(sequentialName).toBe('this engine, sequential(linear, add(Qd), tanh())');
    expect(textsOf(root, 'role-legend-label')).toEqual([...['engine', 'readback every iter', 'tfjs', 'cpu'].map(seriesName), sequentialName]);
    const labels = findAll(root, (e) => hasClass(e, 'mark-symbol', 'role-mark'))
      .flatMap((g) => findAll(g, (e) => e.name === 'path'))
      .map((p) => p.attributes['aria-label']);
    // Two block rows × four series, and the two sequential rows on their own line at 7× the block's µs.
    expect(labels).toHaveLength(2 * 4 + 2);
    expect(labels.filter((l) => l.includes(`series: ${sequentialName};`))).toEqual([
      expect.stringMatching(/shape: d=64, batch=1; µs: 896/), expect.stringMatching(/shape: d=256, batch=1; µs: 3,?584/),
    ]);
    const line = formatRow(sequentialRows[0], ['tfjs', 'cpu']);
    expect(line.startsWith('| picard · sequential | 64 | 1 |')).toBe(true);
    expect(formatRow(rows[0], ['tfjs', 'cpu']).startsWith('| picard | 64 | 1 |')).toBe(true);
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
