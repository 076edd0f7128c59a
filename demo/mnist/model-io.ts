/**
 * Node-only saving and loading of the MNIST classifier (node:fs), kept out of ./model so the
 * browser page can bundle the model. Re-exports ./model; its DeqClassifier adds `save` / `load`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Engine } from '../../src';
import {
  DeqClassifier as BaseClassifier,
  PARAM_NAMES,
  initialValues,
  resolveConfig,
  shapeOf,
  type DeqConfig,
  type ParamName,
} from './model';

export * from './model';

/** The JSON header of a saved model. */
interface SavedHeader {
  format: 'anchorax-mnist-deq';
  version: 1;
  config: DeqConfig;
  /** The weights file, relative to the header's directory. */
  weights: string;
  /** Each parameter's shape and float offset in the weights file (little-endian float32). */
  tensors: { name: ParamName; shape: number[]; offset: number }[];
}

/** The classifier of ./model plus Node-only `save` and `load`. */
export class DeqClassifier extends BaseClassifier {
  /** A freshly initialised model (see DeqConfig.initScale for the block's init). */
  static override async create(engine: Engine, config: Partial<DeqConfig> = {}): Promise<DeqClassifier> {
    const full = resolveConfig(config);
    return BaseClassifier.prepared(new DeqClassifier(engine, full, BaseClassifier.uploadParams(engine, full, initialValues(full))));
  }

  /**
   * Writes `model.json` (config and tensor layout) and `model.bin` (little-endian float32
   * weights) into `dir`; returns the header's path.
   */
  async save(dir: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const values = await this.readParams();
    const total = PARAM_NAMES.reduce((s, n) => s + values[n].length, 0);
    const weights = new Float32Array(total);
    const tensors: SavedHeader['tensors'] = [];
    let offset = 0;
    for (const name of PARAM_NAMES) {
      weights.set(values[name], offset);
      tensors.push({ name, shape: shapeOf(name, this.config.hidden), offset });
      offset += values[name].length;
    }
    const header: SavedHeader = { format: 'anchorax-mnist-deq', version: 1, config: this.config, weights: 'model.bin', tensors };
    const headerPath = join(dir, 'model.json');
    // Float32Array is little-endian on every platform Node runs on.
    await writeFile(join(dir, 'model.bin'), new Uint8Array(weights.buffer));
    await writeFile(headerPath, `${JSON.stringify(header, null, 2)}\n`);
    return headerPath;
  }

  /** Loads a model written by {@link save} from its JSON header (`file`, e.g. `train-out/model.json`). */
  static async load(engine: Engine, file: string): Promise<DeqClassifier> {
    const header = JSON.parse(await readFile(file, 'utf8')) as SavedHeader;
    if (header.format !== 'anchorax-mnist-deq' || header.version !== 1) throw new Error(`${file}: not an anchorax MNIST model`);
    const config = resolveConfig(header.config);
    const binPath = resolve(dirname(file), basename(header.weights));
    const bytes = await readFile(binPath);
    // Copied into a fresh, aligned buffer: Buffer's own backing store may be shared and unaligned.
    const weights = new Float32Array(new Uint8Array(bytes).buffer);
    const values = {} as Record<ParamName, Float32Array>;
    for (const name of PARAM_NAMES) {
      const entry = header.tensors.find((t) => t.name === name);
      const shape = shapeOf(name, config.hidden);
      if (!entry || entry.shape.join() !== shape.join()) throw new Error(`${file}: tensor ${name} missing or not of shape [${shape.join(', ')}]`);
      const size = shape.reduce((a, b) => a * b, 1);
      if (entry.offset + size > weights.length) throw new Error(`${binPath}: too short for tensor ${name}`);
      values[name] = weights.subarray(entry.offset, entry.offset + size);
    }
    return BaseClassifier.prepared(new DeqClassifier(engine, config, BaseClassifier.uploadParams(engine, config, values)));
  }
}
