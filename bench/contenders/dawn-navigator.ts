/**
 * Node only: gives TF.js a `navigator.gpu` backed by Dawn (the `webgpu` package), as a browser
 * would. It is the Dawn instance the Node entry made for `Engine.create()` (pointed at SwiftShader
 * where there is no GPU), so both find the same adapter.
 */
import { globals } from 'webgpu';
import { platform } from '../../src/platform';

/** Sets `globalThis.navigator.gpu` (and the GPU* constants TF.js reads) unless one exists. */
export async function exposeDawnAsNavigatorGpu(): Promise<void> {
  const existing = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (existing?.gpu) return;
  if (!platform.gpu) throw new Error('exposeDawnAsNavigatorGpu: import src/node.ts first (it registers Dawn)');
  const gpu = await platform.gpu();
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...existing, gpu, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
}
