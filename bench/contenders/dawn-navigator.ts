/**
 * Node only: gives TF.js a `navigator.gpu` backed by Dawn (the `webgpu` package), as a browser
 * would. Call it after `Engine.create()`, which has pointed Vulkan at SwiftShader where there is
 * no GPU, so both find the same adapter.
 */
import { create, globals } from 'webgpu';

/**
 * Dawn instances handed out here. They are never released: dawn.node crashes the process when
 * the GC collects an instance whose device is still in use (see src/gpu/device.ts).
 */
const dawnInstances: GPU[] = [];

/** Sets `globalThis.navigator.gpu` (and the GPU* constants TF.js reads) unless one exists. */
export function exposeDawnAsNavigatorGpu(): void {
  const existing = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (existing?.gpu) return;
  Object.assign(globalThis, globals);
  const gpu = create([]);
  dawnInstances.push(gpu);
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...existing, gpu, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
}
