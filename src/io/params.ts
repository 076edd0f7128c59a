/**
 * `saveParams` / `loadParams`: named float32 tensors to and from safetensors files, the format
 * PyTorch (`safetensors.torch.save_file` / `load_file`) and JAX (`safetensors.flax`) read and
 * write with one call. Bytes work everywhere; file paths need the Node entry (platform.ts).
 */
import { Engine } from '../engine';
import { FormatError, NonFiniteError, OptionError, ShapeError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import { platform } from '../platform';
import { Tensor } from '../tensor';
import { readOptions, readStringList, readStringRecord } from '../validate';
import { encodeSafetensors, parseSafetensors, readFloat32, type HostTensor, type SafetensorsFile } from './safetensors';

/** Options of {@link saveParams}. */
export interface SaveParamsOptions {
  /** String pairs stored in the file's `__metadata__` (e.g. a model's configuration as JSON). */
  metadata?: Record<string, string>;
  /**
   * Names of 2-D tensors to store transposed: a `[rows, cols]` tensor is written as `[cols, rows]`.
   * Use it for a linear stage's `W [in, out]` saved as PyTorch's `nn.Linear.weight [out, in]`.
   */
  transpose?: readonly string[];
}

/** Options of {@link loadParams}. */
export interface LoadParamsOptions {
  /**
   * Existing tensors to overwrite in place, by name (to resume training: optimizers keep pointing
   * at them). Only these names are read; each must be in the file with the tensor's shape. Other
   * tensors of the file are ignored. Without `into`, every tensor of the file is uploaded as a new one.
   */
  into?: Record<string, Tensor>;
  /** Names of 2-D tensors stored transposed in the file (PyTorch's `nn.Linear.weight [out, in]`). */
  transpose?: readonly string[];
}

/** Where {@link loadParams} reads from: a file path (Node), or the file's bytes. */
export type ParamsSource = string | Blob | ArrayBuffer | Uint8Array;

function checkEngine(engine: unknown): void {
  if (!(engine instanceof Engine)) throw new OptionError('engine', 'must be an Engine');
}

/** Swaps the two axes of a row-major `[rows, cols]` matrix. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** The `transpose` option as a set, each name checked against `names` and 2-D `shapeOf`. */
function readTranspose(value: unknown, names: ReadonlySet<string>, shapeOf: (name: string) => readonly number[], argument: string): Set<string> {
  const list = readStringList(value, argument);
  list.forEach((name, i) => {
    if (!names.has(name)) throw new OptionError(`${argument}[${i}]`, `names no tensor: "${name}"`);
    const shape = shapeOf(name);
    if (shape.length !== 2) throw new ShapeError(`${argument}[${i}]`, `tensor "${name}" has shape [${shape.join(', ')}]; only 2-D tensors can be transposed`);
  });
  return new Set(list);
}

function pathsUnavailable(argument: string): OptionError {
  return new OptionError(argument, 'file paths need Node (the package\'s Node entry registers file access); elsewhere use the bytes (Uint8Array, ArrayBuffer or Blob)');
}

/**
 * Saves named tensors as a safetensors file (float32, little-endian, in the record's order) and
 * returns its bytes. With a `path` (Node only) the file is also written there. In a browser,
 * `new Blob([bytes])` gives a downloadable file.
 *
 * ```ts
 * const bytes = await saveParams(engine, { weight, bias }, { metadata: { d: '64' } });
 * await saveParams(engine, { weight, bias }, 'model.safetensors');   // Node
 * ```
 *
 * @throws OptionError (`'params'`, `'params.<name>'`: not a record of tensors, a reserved name;
 * `'path'`: paths without Node; `'options.<name>'`), DisposedError / EngineMismatchError
 * (`'params.<name>'`), ShapeError (`'options.transpose[i]'`: not 2-D), DeviceLostError.
 */
export async function saveParams(
  engine: Engine,
  params: Readonly<Record<string, Tensor>>,
  pathOrOptions?: string | SaveParamsOptions,
  options?: SaveParamsOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  checkEngine(engine);
  const path = typeof pathOrOptions === 'string' ? pathOrOptions : undefined;
  const opts = readOptions(typeof pathOrOptions === 'string' ? options : pathOrOptions, 'options', ['metadata', 'transpose']);
  const metadata = readStringRecord(opts.metadata, 'options.metadata');
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new OptionError('params', 'must be an object mapping names to tensors');
  }
  const names = Object.keys(params);
  for (const name of names) {
    const tensor: unknown = params[name];
    if (name === '' || name === '__metadata__') throw new OptionError(`params.${name}`, 'is not a valid tensor name (empty or reserved)');
    if (!(tensor instanceof Tensor)) throw new OptionError(`params.${name}`, 'must be a Tensor');
    tensor.assertUsable(engine, `params.${name}`);
  }
  const transpose = readTranspose(opts.transpose, new Set(names), (n) => params[n].shape, 'options.transpose');
  if (path !== undefined && !platform.writeFile) throw pathsUnavailable('path');
  engine.assertAlive('saveParams');
  const values = await Promise.all(names.map((n) => params[n].read()));
  const host = new Map<string, HostTensor>();
  names.forEach((name, i) => {
    const { shape } = params[name];
    host.set(name, transpose.has(name) ? { shape: [shape[1], shape[0]], data: transposed(values[i], shape[0], shape[1]) } : { shape, data: values[i] });
  });
  const bytes = encodeSafetensors(host, metadata, 'params');
  if (path !== undefined && platform.writeFile) await platform.writeFile(path, bytes);
  return bytes;
}

/** The bytes of `source`. */
async function readSource(source: ParamsSource, argument: string): Promise<Uint8Array> {
  if (typeof source === 'string') {
    if (!platform.readFile) throw pathsUnavailable(argument);
    try {
      return await platform.readFile(source);
    } catch (err) {
      throw new FormatError(argument, `cannot read "${source}" (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  throw new OptionError(argument, 'must be a file path, a Blob, an ArrayBuffer or a Uint8Array');
}

/** Tensor `name` of `file` as float32 in our layout (transposed back if asked), finite-checked. */
function hostValues(file: SafetensorsFile, name: string, transpose: boolean): HostTensor {
  const argument = `source.${name}`;
  const entry = file.entries.get(name);
  if (!entry) throw new FormatError(argument, 'no such tensor in the file');
  let data = readFloat32(file, name, 'source');
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new NonFiniteError(argument, `value ${data[bad]} at index ${bad} is not finite`);
  // A scalar ([]) loads as a one-element tensor; tensors need at least one element.
  let shape = entry.shape.length === 0 ? [1] : entry.shape;
  if (shape.includes(0)) throw new ShapeError(argument, `shape [${shape.join(', ')}] has no elements; tensors need at least one`);
  if (transpose) {
    data = transposed(data, shape[0], shape[1]);
    shape = [shape[1], shape[0]];
  }
  return { shape, data };
}

/**
 * The string pairs of a safetensors file's `__metadata__` (`{}` when it has none).
 *
 * @throws FormatError (`'source'`), OptionError (`'source'`: a path without Node, or not a source).
 */
export async function paramsMetadata(source: ParamsSource): Promise<Record<string, string>> {
  return { ...parseSafetensors(await readSource(source, 'source'), 'source').metadata };
}

/**
 * Loads float32 tensors from a safetensors file (F32; F64, F16 and BF16 are converted), checking
 * the whole file first: header length against the file size, the JSON, each tensor's dtype, shape
 * and byte range (in bounds, not overlapping), and its values (finite). Returns new tensors by
 * name, in file order, or, with `into`, overwrites those tensors in place and returns `into`.
 * Nothing is uploaded or overwritten when any check fails.
 *
 * ```ts
 * const params = await loadParams(engine, 'model.safetensors');             // Node
 * const params = await loadParams(engine, await fetch(url).then((r) => r.blob()));
 * await loadParams(engine, bytes, { into: { weight, bias } });                // resume training
 * ```
 *
 * @throws FormatError (`'source'`, `'source.<name>'`: unreadable or malformed file, unsupported
 * dtype, a tensor missing for `into`), NonFiniteError (`'source.<name>'`), ShapeError
 * (`'source.<name>'`: empty, or not `into`'s shape; `'options.into.<name>'`: buffer without
 * COPY_DST), OptionError (`'source'`, `'options.<name>'`), DisposedError / EngineMismatchError
 * (`'options.into.<name>'`), DeviceLostError.
 */
export async function loadParams(engine: Engine, source: ParamsSource, options?: LoadParamsOptions): Promise<Record<string, Tensor>> {
  checkEngine(engine);
  const opts = readOptions(options, 'options', ['into', 'transpose']);
  const into = opts.into as Record<string, unknown> | undefined;
  if (into !== undefined) {
    if (typeof into !== 'object' || into === null || Array.isArray(into)) throw new OptionError('options.into', 'must be an object mapping names to tensors');
    for (const [name, tensor] of Object.entries(into)) {
      if (!(tensor instanceof Tensor)) throw new OptionError(`options.into.${name}`, 'must be a Tensor');
      tensor.assertUsable(engine, `options.into.${name}`);
      if (!(tensor.buffer.usage & BufferUsage.COPY_DST)) throw new ShapeError(`options.into.${name}`, 'its buffer needs GPUBufferUsage.COPY_DST to be overwritten');
    }
  }
  const file = parseSafetensors(await readSource(source, 'source'), 'source');
  const names = into ? Object.keys(into) : [...file.entries.keys()];
  for (const name of names) if (!file.entries.has(name)) throw new FormatError(`source.${name}`, 'no such tensor in the file');
  const transpose = readTranspose(opts.transpose, new Set(names), (n) => file.entries.get(n)?.shape ?? [], 'options.transpose');
  const host = names.map((name) => hostValues(file, name, transpose.has(name)));
  engine.assertAlive('loadParams');
  if (into) {
    const targets = into as Record<string, Tensor>;
    names.forEach((name, i) => {
      const { shape } = targets[name];
      if (host[i].shape.join() !== shape.join()) {
        throw new ShapeError(`source.${name}`, `has shape [${host[i].shape.join(', ')}] but the tensor to load into has [${shape.join(', ')}]`);
      }
    });
    names.forEach((name, i) => {
      const { data } = host[i];
      engine.device.queue.writeBuffer(targets[name].buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    });
    return targets;
  }
  const loaded: Record<string, Tensor> = {};
  try {
    names.forEach((name, i) => {
      loaded[name] = engine.tensor(host[i].data, host[i].shape);
    });
  } catch (err) {
    for (const tensor of Object.values(loaded)) tensor.dispose();
    throw err;
  }
  return loaded;
}
