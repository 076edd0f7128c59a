/**
 * Finding a GPUDevice: `navigator.gpu` in browsers, or the WebGPU implementation a host entry
 * registered (Dawn through `src/node.ts` in Node). This file stays free of Node imports so the
 * browser entry never reaches `webgpu` or `node:*`.
 */
import { NoAdapterError } from '../errors';
import { platform } from '../platform';

/** Advice when `navigator.gpu` exists but gives no adapter (WebGPU off, GPU blocklisted). */
const BROWSER_NO_ADAPTER_HINT =
  'navigator.gpu gave no adapter: WebGPU is disabled or this GPU is blocklisted. Turn on hardware ' +
  'acceleration in the browser settings, use a WebGPU-capable browser (a recent Chrome, Edge, Safari or ' +
  'Firefox), and see chrome://gpu (or about:support) for why WebGPU is unavailable.';
const NO_NAVIGATOR_GPU_HINT =
  'this browser has no WebGPU (navigator.gpu is undefined). Try a recent Chrome, Edge, Safari or Firefox, ' +
  'on a secure (https or localhost) page.';
const NODE_WITHOUT_PLATFORM_HINT =
  'this is Node, but the browser build of anchorax was loaded: load the package through its `node` export ' +
  'condition (the default in Node) or `anchorax/node`, which registers Dawn (the `webgpu` package).';

/** WebGPU power preference (a string union of our own, so public types need no DOM alias). */
export type PowerPreference = 'low-power' | 'high-performance';

/** The limits we raise to the adapter's maximum, so large problems work where the GPU allows. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
] as const;

async function requestDeviceFrom(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  // Reductions shuffle within subgroups where the device has them (lib/reduce_subgroups.wgsl).
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups');
  return adapter.requestDevice({ requiredLimits, requiredFeatures });
}

function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
}

/** Requests an adapter and a device with the adapter's full buffer limits. */
export async function acquireDevice(powerPreference: PowerPreference = 'high-performance'): Promise<GPUDevice> {
  const browserGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  let gpu: GPU | undefined = browserGpu;
  if (!gpu && platform.gpu) gpu = await platform.gpu();
  if (!gpu) throw new NoAdapterError('Engine.create', isNode() ? NODE_WITHOUT_PLATFORM_HINT : NO_NAVIGATOR_GPU_HINT);
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) {
    const hint = gpu === browserGpu ? BROWSER_NO_ADAPTER_HINT : (platform.noAdapterHint ?? BROWSER_NO_ADAPTER_HINT);
    throw new NoAdapterError('Engine.create', hint);
  }
  return requestDeviceFrom(adapter);
}
