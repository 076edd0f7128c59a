// `npm run bench:compare`'s arithmetic and checks, on hand-made run files: base round i pairs with
// working round i, medians over rounds, the sequential row against the block of its own run, rows
// that differ between the sides rejected, and flags the base commit's CLI would silently ignore.
import { describe, expect, it } from 'vitest';
import { compareRuns, comparisonTable, median, unknownFlags, worstRatios, type RunFile, type RunRow } from '../bench/compare-table';

const run = (rows: RunRow[]): RunFile => ({ adapter: 'test adapter', machine: 'vm', loadAtStart: 1, rows });
const r = (solver: string, d: number, batch: number, usPerEval: number, layer?: string): RunRow => ({ solver, d, batch, tnstep: 17, usPerEval, ...(layer ? { layer } : {}) });

describe('bench compare', () => {
  it('takes medians over rounds and ratios per round pair', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // Older commits write rows without `layer`: they are block rows.
    const base = [run([r('picard', 256, 1, 100), r('anderson', 256, 1, 50)]), run([r('picard', 256, 1, 120), r('anderson', 256, 1, 40)]), run([r('picard', 256, 1, 110), r('anderson', 256, 1, 60)])];
    const work = [
      run([r('picard', 256, 1, 90, 'block'), r('picard', 256, 1, 180, 'sequential'), r('anderson', 256, 1, 50, 'block'), r('anderson', 256, 1, 45, 'sequential')]),
      run([r('picard', 256, 1, 132, 'block'), r('picard', 256, 1, 132, 'sequential'), r('anderson', 256, 1, 44, 'block'), r('anderson', 256, 1, 44, 'sequential')]),
      run([r('picard', 256, 1, 99, 'block'), r('picard', 256, 1, 396, 'sequential'), r('anderson', 256, 1, 30, 'block'), r('anderson', 256, 1, 60, 'sequential')]),
    ];
    const [picard, anderson] = compareRuns(base, work);
    expect(picard).toMatchObject({ solver: 'picard', d: 256, batch: 1, baseUs: 110, workUs: 99 });
    // 99 / 110 overall; round pairs 0.9, 1.1, 0.9.
    expect(picard.ratio.median).toBeCloseTo(0.9, 12);
    expect(picard.ratio.low).toBeCloseTo(0.9, 12);
    expect(picard.ratio.high).toBeCloseTo(1.1, 12);
    // Sequential over the block of the same run: 2, 1, 4 → median 2.
    expect(picard.sequential).toEqual({ us: 180, perBlock: { median: 2, low: 1, high: 4 } });
    expect(anderson.baseUs).toBe(50);
    expect(anderson.workUs).toBe(44);
    expect(anderson.sequential?.perBlock).toEqual({ median: 1, low: 0.9, high: 2 });
    const { block, sequential } = worstRatios([picard, anderson]);
    expect(block?.ratio.median).toBeCloseTo(0.9, 12); // picard's 0.90 over anderson's 44 / 50 = 0.88
    expect(block?.solver).toBe('picard');
    expect(sequential?.solver).toBe('picard');

    const table = comparisonTable([picard, anderson], '0edfd11').split('\n');
    expect(table).toHaveLength(4);
    expect(table[0]).toBe('| solver | d | batch | f-evals | base 0edfd11 µs/f-eval | working tree µs/f-eval | working / base | sequential µs/f-eval | sequential / block (same run) |');
    expect(table[2]).toBe('| picard | 256 | 1 | 17 | 110 | 99.0 | 0.90× (0.90–1.10) | 180 | 2.00× (1.00–4.00) |');
  });

  it('shows "—" without sequential rows and flags differing f-evaluation counts', () => {
    const [row] = compareRuns([run([r('broyden', 64, 0, 10)])], [run([{ ...r('broyden', 64, 0, 20, 'block'), tnstep: 9 }])]);
    expect(row.sequential).toBeNull();
    expect(comparisonTable([row], 'abc').split('\n')[2]).toBe('| broyden | 64 | 0 | 17 vs 9 | 10.0 | 20.0 | 2.00× (2.00–2.00) | — | — |');
  });

  it('rejects runs whose rows differ between the sides or rounds', () => {
    const base = [run([r('picard', 256, 1, 1)]), run([r('picard', 256, 1, 1)])];
    expect(() => compareRuns(base, [run([r('picard', 256, 1, 1)])])).toThrow(/2 base runs against 1 working-tree runs/);
    expect(() => compareRuns(base, [run([r('picard', 256, 1, 1)]), run([r('picard', 1024, 1, 1)])])).toThrow(/working-tree run 2 ran other rows \(picard\|1024\|1\)/);
    expect(() => compareRuns([], [])).toThrow(/0 base runs/);
  });

  it('finds the flags a commit’s bench CLI does not read', () => {
    const cli = "const quick = process.argv.includes('--quick');\nsizes: list(argument('sizes'), [256]),\nrepeats: Number(argument('repeats'))";
    expect(unknownFlags(cli, ['--sizes', '256', '--quick', '--repeats', '3'])).toEqual([]);
    expect(unknownFlags(cli, ['--sizes', '256', '--layers', 'block,sequential', '--fused', 'off'])).toEqual(['layers', 'fused']);
  });
});
