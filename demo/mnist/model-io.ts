/**
 * Node-only saving and loading of the MNIST classifier (node:fs), kept out of ./model so the
 * browser page can bundle the model. Re-exports ./model; its DeqClassifier adds `save` / `load`
 * of `model.safetensors` (the bytes of `toSafetensors`: parameters and config in one file).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../../src';
import { DeqClassifier as BaseClassifier, initialValues, resolveConfig, type DeqConfig } from './model';

export * from './model';

/** The file `save` writes into its directory. */
export const MODEL_FILE = 'model.safetensors';

/** The classifier of ./model plus Node-only `save` and `load`. */
export class DeqClassifier extends BaseClassifier {
  /** A freshly initialised model (see DeqConfig.initScale for the block's init). */
  static override async create(engine: Engine, config: Partial<DeqConfig> = {}): Promise<DeqClassifier> {
    const full = resolveConfig(config);
    return BaseClassifier.prepared(new DeqClassifier(engine, full, BaseClassifier.uploadParams(engine, full, initialValues(full))));
  }

  /** Writes `model.safetensors` (parameters and config) into `dir`; returns its path. */
  async save(dir: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, MODEL_FILE);
    await writeFile(path, await this.toSafetensors());
    return path;
  }

  /** Loads a model written by {@link save} (or by the demo page's download) from `file`. */
  static async load(engine: Engine, file: string): Promise<DeqClassifier> {
    const bytes = await readFile(file);
    const { config, params } = await BaseClassifier.readSafetensors(engine, bytes);
    return BaseClassifier.prepared(new DeqClassifier(engine, config, params), bytes);
  }
}
