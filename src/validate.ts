/**
 * The one validator of the public API's arguments: every options object (solvers, layers,
 * stages, optimizers, backprop, the engine) is read through `readOptions`, so an unknown or
 * misspelt option is an OptionError that names it (with the nearest known name), never ignored.
 * Values are checked with the small readers below; each error names the argument in full
 * (`'options.eps'`, `'dropout.rate'`, …).
 */
import { OptionError } from './errors';

/** What a value looks like in a message: short, and never throwing. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return String(value);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The known name closest to `name`, when it is close enough to be a typo. */
function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === name.toLowerCase() ? 0 : distance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Checks that `value` is a plain options object (or undefined, read as `{}`) whose keys are all
 * in `known`, and returns it as a record.
 *
 * @param argument how the caller names the object: `'options'`, `'params'`, `'dropout'`…; an
 * unknown key `k` is reported as `${argument}.${k}`.
 * @throws OptionError naming `argument` (not an object) or `argument.<key>` (unknown key).
 */
export function readOptions(value: unknown, argument: string, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OptionError(argument, `must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const guess = nearest(key, known);
      const hint = guess ? `did you mean '${guess}'? ` : '';
      throw new OptionError(`${argument}.${key}`, `unknown option; ${hint}(known: ${known.join(', ') || 'none'})`);
    }
  }
  return value as Record<string, unknown>;
}

/** A finite number, or `fallback` when undefined. */
export function readNumber(value: unknown, argument: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new OptionError(argument, `must be a finite number, got ${describe(value)}`);
  }
  const { min = -Infinity, max = Infinity } = range;
  if (value < min || value > max) throw new OptionError(argument, `must lie in [${min}, ${max}], got ${value}`);
  return value;
}

/** An integer in [min, max], or `fallback` when undefined. */
export function readInteger(value: unknown, argument: string, fallback: number, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const v = readNumber(value, argument, fallback);
  if (!Number.isInteger(v) || v < min || v > max) throw new OptionError(argument, `must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

/** true or false, or `fallback` when undefined. */
export function readBoolean(value: unknown, argument: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new OptionError(argument, `must be true or false, got ${describe(value)}`);
  return value;
}

/** One of `choices`, or `fallback` when undefined. */
export function readChoice<T extends string>(value: unknown, argument: string, fallback: T, choices: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new OptionError(argument, `must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

/** true, false or one of `choices` (a mode beyond on/off), or `fallback` when undefined. */
export function readSwitch<T extends string>(value: unknown, argument: string, fallback: boolean | T, choices: readonly T[]): boolean | T {
  if (value === undefined || typeof value === 'boolean') return value ?? fallback;
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  throw new OptionError(argument, `must be true, false${choices.map((c) => ` or '${c}'`).join('')}, got ${describe(value)}`);
}

/** A list of strings (e.g. tensor names), or `[]` when undefined. */
export function readStringList(value: unknown, argument: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new OptionError(argument, `must be a list of strings, got ${describe(value)}`);
  value.forEach((item: unknown, i) => {
    if (typeof item !== 'string') throw new OptionError(`${argument}[${i}]`, `must be a string, got ${describe(item)}`);
  });
  return value as string[];
}

/** An object whose values are all strings, or `{}` when undefined. */
export function readStringRecord(value: unknown, argument: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OptionError(argument, `must be an object of strings, got ${describe(value)}`);
  }
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new OptionError(`${argument}.${key}`, `must be a string, got ${describe(item)}`);
  }
  return value as Record<string, string>;
}
