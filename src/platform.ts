/**
 * Host services that only some platforms have. The browser entry (`src/index.ts`) leaves them
 * empty; the Node entry (`src/node.ts`, the package's `node` export condition) fills them in, so
 * browser bundlers never see `webgpu` or `node:*` imports.
 */

/** What a host can provide beyond `navigator.gpu` and the standard web APIs. */
export interface Platform {
  /** A WebGPU implementation for hosts without `navigator.gpu` (Dawn in Node). */
  gpu?: () => Promise<GPU>;
  /** Hint appended to NoAdapterError when the host's GPU gives no adapter. */
  noAdapterHint?: string;
  /** Reads a whole file (paths are only meaningful where this is set). */
  readFile?: (path: string) => Promise<Uint8Array>;
  /** Writes a whole file, replacing it. */
  writeFile?: (path: string, data: Uint8Array) => Promise<void>;
}

/** @internal The services registered so far. */
export const platform: Platform = {};

/** @internal Called once by a host entry point before anything else runs. */
export function registerPlatform(services: Platform): void {
  Object.assign(platform, services);
}
