/** What the Node benchmark entry points share: flag parsing and a main that always exits. */
import { Engine } from '../src';

/** The value after `--name` on the command line. */
export function argument(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The positive integer after `--name`, or `fallback` without one; throws on anything else. */
export function integerArgument(name: string, fallback: number): number {
  const given = argument(name);
  const value = given === undefined ? fallback : Number(given);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a positive integer, got ${given}`);
  return value;
}

/** A deterministic uniform value in [-1, 1) for index i of stream `seed` (the benchmarks' weights and inputs). */
export const value = (seed: number, i: number): number => (((i * 7919 + seed * 104729) % 1000) / 500) - 1;

/** A readable name of the engine's adapter. */
export function adapterName(engine: Engine): string {
  const info = engine.device.adapterInfo;
  return [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' / ') || 'unknown adapter';
}

/** Runs `main` and ends the process (dawn.node would keep it alive). */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/** Two ways of doing the same work, timed alternately in one process (A, B, A, B, …). */
export interface SideBySide {
  /** ms of each round, A then B. */
  a: number[];
  b: number[];
}

/** `warmup` untimed rounds, then `rounds` timed ones, each running `a` then `b` once. */
export async function sideBySide(rounds: number, warmup: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<SideBySide> {
  const timed = async (run: () => Promise<unknown>): Promise<number> => {
    const start = performance.now();
    await run();
    return performance.now() - start;
  };
  for (let r = 0; r < warmup; r++) {
    await a();
    await b();
  }
  const out: SideBySide = { a: [], b: [] };
  for (let r = 0; r < rounds; r++) {
    out.a.push(await timed(a));
    out.b.push(await timed(b));
  }
  return out;
}

/** The median of a list of numbers. */
export const median = (values: readonly number[]): number => [...values].sort((x, y) => x - y)[values.length >> 1];

/** "median× (lowest–highest)" of the rounds' ratios A / B. */
export function ratioCell({ a, b }: SideBySide): string {
  const ratios = a.map((ms, r) => ms / b[r]).sort((x, y) => x - y);
  return `${ratios[ratios.length >> 1].toFixed(2)}× (${ratios[0].toFixed(2)}–${ratios[ratios.length - 1].toFixed(2)})`;
}
