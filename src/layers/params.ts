/**
 * Layer parameters: validation of tensors or arrays given by the caller, and their upload.
 */
import type { Engine } from '../engine';
import { DisposedError, NonFiniteError, ShapeError } from '../errors';
import { Tensor } from '../tensor';
import { describe, readValues } from '../validate';

/** A parameter as a caller gives it: a tensor used in place, or values to upload. */
export type ParamValue = Tensor | Float32Array | number[];

/**
 * A parameter as given, before its shape is known: a Tensor, or CPU values of the kinds
 * `engine.tensor` takes (finiteness is checked by {@link checkParam}).
 * @throws ShapeError (`name`: missing or of another kind).
 */
export function readParam(value: unknown, name: string): ParamValue {
  if (value === undefined) throw new ShapeError(name, 'is required');
  if (value instanceof Tensor) return value;
  if (value instanceof Float32Array || value instanceof Float64Array || Array.isArray(value)) return readValues(value, name) as ParamValue;
  throw new ShapeError(name, `must be a Tensor, a Float32Array or a number[], got ${describe(value)}`);
}

/** Validates a parameter (usable tensor, or finite values of the right count) without uploading it. */
export function checkParam(engine: Engine, value: ParamValue, name: string, shape: number[]): ParamValue {
  if (value instanceof Tensor) {
    value.assertUsable(engine, name);
    if (value.shape.join() !== shape.join()) {
      throw new ShapeError(name, `must have shape [${shape.join(', ')}], got [${value.shape.join(', ')}]`);
    }
    return value;
  }
  readParam(value, name);
  const size = shape.reduce((a, b) => a * b, 1);
  if (value.length !== size) throw new ShapeError(name, `must have ${size} values (shape [${shape.join(', ')}]), got ${value.length}`);
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) throw new NonFiniteError(name, `value ${value[i]} at index ${i} is not finite`);
  }
  engine.assertFits(size * 4, name);
  return value;
}

export function upload(engine: Engine, value: ParamValue, shape: number[]): Tensor {
  return value instanceof Tensor ? value : engine.tensor(value, shape);
}

/**
 * Uploads (in order) each value that is not a tensor yet. When an upload throws, the tensors
 * uploaded before it are freed first, so a factory that fails leaks nothing. Returns the tensors
 * and those of them uploaded here (the layer's own, freed by its dispose()).
 */
export function uploadAll(engine: Engine, values: readonly (readonly [ParamValue, number[]])[]): { tensors: Tensor[]; owned: Tensor[] } {
  const tensors: Tensor[] = [];
  const owned: Tensor[] = [];
  try {
    for (const [value, shape] of values) {
      const tensor = upload(engine, value, shape);
      if (tensor !== value) owned.push(tensor);
      tensors.push(tensor);
    }
  } catch (err) {
    for (const tensor of owned) tensor.dispose();
    throw err;
  }
  return { tensors, owned };
}

/**
 * @internal The lifetime of a layer or stage: the parameters it uploaded from arrays (freed by
 * its dispose(); tensors the caller passed stay the caller's), and DisposedError once disposed.
 */
export class Lifetime {
  private isDisposed = false;
  constructor(
    private readonly owned: readonly Tensor[],
    private readonly what: string,
  ) {}

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Throws DisposedError (`argument`) once disposed. */
  assertLive(argument: string): void {
    if (this.isDisposed) throw new DisposedError(argument, `the ${this.what} was disposed`);
  }

  /** Frees the uploaded parameters; false when already disposed (nothing to do). */
  end(): boolean {
    if (this.isDisposed) return false;
    this.isDisposed = true;
    for (const tensor of this.owned) tensor.dispose();
    return true;
  }
}


/** Validates and uploads (unless already a tensor) a parameter of `shape`. */
export function param(engine: Engine, value: ParamValue | undefined, name: string, shape: number[]): Tensor {
  if (value === undefined) throw new ShapeError(name, 'is required');
  return upload(engine, checkParam(engine, value, name, shape), shape);
}
