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
  /**
   * Whether the host's WebGPU keeps the main thread busy while a promise such as `mapAsync` is
   * pending. Dawn in Node does: it polls for events on `setImmediate` until the promise settles,
   * which takes a core from a CPU adapter's threads and makes garbage whose collection stalls
   * later calls (docs/swiftshader-costs.md). A solve then sleeps through most of a chunk's
   * expected GPU time before it maps the chunk's readback (src/solvers/pace.ts).
   */
  spinsWhileWaiting?: boolean;
}

/** @internal The services registered so far. */
export const platform: Platform = {};

/** @internal Called once by a host entry point before anything else runs. */
export function registerPlatform(services: Platform): void {
  Object.assign(platform, services);
}
