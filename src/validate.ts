/**
 * The one validator of the public API's arguments: every options object (solvers, layers,
 * stages, optimizers, backprop, the engine) is read through `readOptions`, so an unknown or
 * misspelt option is an OptionError that names it (with the nearest known name), never ignored.
 * Values are checked with the small readers below; each error names the argument in full
 * (`'options.eps'`, `'dropout.rate'`, …).
 */
import type { Engine } from './engine';
import { OptionError, ShapeError } from './errors';
import type { BufferRegion } from './gpu/kernel';
import type { ImplicitLayer } from './layers/layer';
import type { SolveResult } from './results';
import { Tensor } from './tensor';

/** The largest finite float32: numbers that reach the GPU as f32 uniforms are bounded by it. */
export const F32_MAX = 3.4028234663852886e38;

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

/**
 * Names of earlier releases and of other libraries that are too far from today's to be caught as
 * typos: `{ w, b }` / `{ W, b }` (the original JAX block, anchorax 0.1) for `{ weight, bias }`,
 * and the linear layer's gradient buffers `{ dW, db }` for `{ weight, bias }`.
 */
const RENAMED: Readonly<Record<string, string>> = { w: 'weight', W: 'weight', b: 'bias', dW: 'weight', db: 'bias' };

/** The known name closest to `name`, when it is close enough to be a typo (or a renamed one). */
function nearest(name: string, known: readonly string[]): string | undefined {
  const renamed = Object.hasOwn(RENAMED, name) ? RENAMED[name] : undefined;
  if (renamed !== undefined && known.includes(renamed)) return renamed;
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

/**
 * Bounds of {@link readNumber}: `min`/`max` inclusive, `above`/`below` exclusive.
 */
export interface NumberRange {
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}

/** A finite number within `range`, or `fallback` when undefined. */
export function readNumber(value: unknown, argument: string, fallback: number, range: NumberRange = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new OptionError(argument, `must be a finite number, got ${describe(value)}`);
  }
  const { min = -Infinity, max = Infinity, above = -Infinity, below = Infinity } = range;
  if (value < min || value > max || !(value > above) || !(value < below)) {
    const low = above > min ? `(${above}` : `[${min}`;
    const high = below < max ? `${below})` : `${max}]`;
    throw new OptionError(argument, `must lie in ${low}, ${high}, got ${value}`);
  }
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

/**
 * A Tensor (not a look-alike), not disposed, and of `engine` when one is given.
 * @throws ShapeError (`argument`: not a Tensor), DisposedError, EngineMismatchError.
 */
export function readTensor(value: unknown, argument: string, engine?: Engine): Tensor {
  if (!(value instanceof Tensor)) throw new ShapeError(argument, `must be a Tensor, got ${describe(value)}`);
  value.assertUsable(engine ?? value.engine, argument);
  return value;
}

/** Whether `value` looks like an Engine (checked by its methods: engine.ts imports this file). */
function isEngine(value: unknown): value is Engine {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Partial<Record<keyof Engine, unknown>>;
  return typeof e.assertAlive === 'function' && typeof e.kernel === 'function' && typeof e.allocate === 'function';
}

/**
 * An Engine (from `Engine.create` or `Engine.fromDevice`) whose device is alive.
 * @throws OptionError (`argument`), DeviceLostError.
 */
export function readEngine(value: unknown, argument: string, what: string): Engine {
  if (!isEngine(value)) throw new OptionError(argument, `must be an Engine (await Engine.create()), got ${describe(value)}`);
  value.assertAlive(what);
  return value;
}

/**
 * An implicit layer: an object with `prepare`, `encodeForward`, `encodeAdjoint`, a positive
 * integer `featureSize`, a `params` record and an engine.
 * @throws OptionError (`argument`).
 */
export function readLayer(value: unknown, argument: string): ImplicitLayer {
  const layer = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof ImplicitLayer, unknown>>;
  const ok =
    typeof layer.encodeForward === 'function' &&
    typeof layer.encodeAdjoint === 'function' &&
    typeof layer.prepare === 'function' &&
    typeof layer.featureSize === 'number' &&
    Number.isInteger(layer.featureSize) &&
    layer.featureSize >= 1 &&
    typeof layer.params === 'object' &&
    layer.params !== null &&
    isEngine(layer.engine);
  if (!ok) throw new OptionError(argument, `must be an implicit layer (e.g. implicitBlock(engine, { weight, bias })), got ${describe(value)}`);
  return value as ImplicitLayer;
}

/**
 * Float values given on the CPU: a Float32Array, a Float64Array or an array of numbers (a
 * string, an integer typed array or an array holding anything but numbers is refused, never
 * converted). Values are not checked for finiteness here.
 * @throws ShapeError (`argument`).
 */
export function readValues(value: unknown, argument: string): Float32Array | Float64Array | number[] {
  if (value instanceof Float32Array || value instanceof Float64Array) return value;
  if (!Array.isArray(value)) throw new ShapeError(argument, `must be a Float32Array, a Float64Array or a number[], got ${describe(value)}`);
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'number') throw new ShapeError(argument, `value at index ${i} is ${describe(value[i])}, not a number`);
  }
  return value as number[];
}

/**
 * A GPUDevice (checked by what the engine uses of it: buffers, command encoders, a queue,
 * limits and the `lost` promise), so that a look-alike fails here, naming `argument`.
 * @throws OptionError (`argument`).
 */
export function readDevice(value: unknown, argument: string): GPUDevice {
  const d = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof GPUDevice, unknown>>;
  const queue = d.queue as Partial<Record<keyof GPUQueue, unknown>> | null | undefined;
  const lost = d.lost as { then?: unknown } | null | undefined;
  const ok =
    typeof d.createBuffer === 'function' &&
    typeof d.createCommandEncoder === 'function' &&
    typeof d.createShaderModule === 'function' &&
    typeof queue === 'object' && queue !== null &&
    typeof queue.submit === 'function' &&
    typeof queue.writeBuffer === 'function' &&
    typeof d.limits === 'object' && d.limits !== null &&
    typeof lost === 'object' && lost !== null && typeof lost.then === 'function';
  if (!ok) throw new OptionError(argument, `must be a GPUDevice (adapter.requestDevice()), got ${describe(value)}`);
  return value as GPUDevice;
}

/**
 * A solver argument (`options.solver`, `options.backwardSolver`): `fallback` when undefined,
 * else a function — one of `picard`, `anderson`, `broyden` or a function of the same signature
 * (a wrapper). What it returns is checked by {@link readSolveResult}.
 * @throws OptionError (`argument`).
 */
export function readSolver<S extends (...args: never[]) => unknown>(value: unknown, argument: string, fallback: S): S {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') {
    throw new OptionError(argument, `must be a solver (picard, anderson, broyden or a function of their signature), got ${describe(value)}`);
  }
  return value as S;
}

/**
 * What a solver given as `argument` returned: a SolveResult whose uStar and uPrev are usable
 * tensors of `engine` with `shape`.
 * @throws OptionError (`argument`).
 */
export function readSolveResult(value: unknown, argument: string, engine: Engine, shape: readonly number[]): SolveResult {
  const r = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof SolveResult, unknown>>;
  const usable = (t: unknown): boolean =>
    t instanceof Tensor && !t.disposed && t.engine === engine && t.shape.join() === shape.join();
  const stats = r.stats as Partial<Record<string, unknown>> | null | undefined;
  const ok =
    usable(r.uStar) &&
    usable(r.uPrev) &&
    typeof r.tnstep === 'number' &&
    typeof stats === 'object' && stats !== null && typeof stats.nstep === 'number' &&
    typeof r.dispose === 'function';
  if (!ok) {
    throw new OptionError(argument, `returned ${describe(value)}, not a solve result ({ uStar, uPrev, tnstep, stats, dispose } with tensors of Qd's shape on this engine)`);
  }
  return value as SolveResult;
}

/** Whether `value` is a WebGPU buffer (by its WebIDL class tag, as both Dawn and browsers set it). */
export function isGpuBuffer(value: unknown): value is GPUBuffer {
  return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object GPUBuffer]';
}

/** Whether `value` is a GPUBuffer or a `{ buffer, offset?, size? }` region of one (a Tensor is not). */
export function isBufferRegion(value: unknown): value is BufferRegion {
  if (isGpuBuffer(value)) return true;
  if (typeof value !== 'object' || value === null || value instanceof Tensor) return false;
  return isGpuBuffer((value as { buffer?: unknown }).buffer);
}

/**
 * A buffer argument of the low-level encoders: a usable Tensor of `engine`, a GPUBuffer or a
 * region of one, returned as a region.
 * @throws ShapeError (`argument`), DisposedError / EngineMismatchError (a Tensor's).
 */
export function readRegion(value: unknown, argument: string, engine: Engine): BufferRegion {
  if (value instanceof Tensor) return readTensor(value, argument, engine).buffer;
  if (!isBufferRegion(value)) throw new ShapeError(argument, `must be a Tensor, a GPUBuffer or { buffer, offset?, size? }, got ${describe(value)}`);
  return value;
}

/**
 * The compute pass (or, with `kind: 'encoder'`, the command encoder) given to an `encode…`
 * method, checked by its methods so that null or a look-alike fails with a typed error.
 * @throws OptionError (`argument`).
 */
export function readEncoder<T extends GPUComputePassEncoder | GPUCommandEncoder>(value: T, argument: string, kind: 'pass' | 'encoder' = 'pass'): T {
  const method = kind === 'pass' ? 'dispatchWorkgroups' : 'clearBuffer';
  if (typeof value !== 'object' || value === null || typeof (value as unknown as Record<string, unknown>)[method] !== 'function') {
    const what = kind === 'pass' ? 'a GPUComputePassEncoder (encoder.beginComputePass())' : 'a GPUCommandEncoder (device.createCommandEncoder())';
    throw new OptionError(argument, `must be ${what}, got ${describe(value)}`);
  }
  return value;
}
