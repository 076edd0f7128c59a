/**
 * Finding a GPUDevice: `navigator.gpu` in browsers, Dawn (the `webgpu` package) in Node.
 * On Linux without a GPU, Dawn finds no Vulkan driver unless it is pointed at SwiftShader's
 * ICD (shipped by Debian's `chromium`); we do that ourselves so users need not know.
 */
import { NoAdapterError } from '../errors';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const INSTALL_HINT =
  'no WebGPU adapter found. On Debian/Ubuntu install a Vulkan loader and SwiftShader with ' +
  '`sudo apt-get update && sudo apt-get install -y chromium libvulkan1` (or run on a machine with a GPU driver).';

interface NodeProcess {
  env: Record<string, string | undefined>;
  versions?: { node?: string };
}

function nodeProcess(): NodeProcess | undefined {
  const p = (globalThis as { process?: NodeProcess }).process;
  return p?.versions?.node ? p : undefined;
}

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
  return adapter.requestDevice({ requiredLimits, requiredFeatures });
}

/**
 * Dawn instances made in Node. They must outlive every device made from them: when the GC
 * collects an instance whose device is still in use, dawn.node crashes the process a few
 * hundred milliseconds later (seen as futex/mutex assertion failures). So they are never released.
 */
const dawnInstances: GPU[] = [];

async function nodeGpu(proc: NodeProcess): Promise<GPU> {
  // A variable module name keeps browser bundlers from trying to resolve Dawn.
  const moduleName = 'webgpu';
  let dawn: { create(flags: string[]): GPU };
  try {
    dawn = (await import(/* @vite-ignore */ moduleName)) as { create(flags: string[]): GPU };
  } catch {
    throw new NoAdapterError('Engine.create', 'the `webgpu` package (Dawn for Node) is not installed: `npm install webgpu`.');
  }
  const instance = (): GPU => {
    const gpu = dawn.create([]);
    dawnInstances.push(gpu);
    return gpu;
  };
  const first = instance();
  if (await first.requestAdapter()) return first;
  const { existsSync } = await import(/* @vite-ignore */ 'node:fs');
  if (!proc.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    proc.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    return instance();
  }
  return first;
}

/** Requests an adapter and a device with the adapter's full buffer limits. */
export async function acquireDevice(powerPreference: GPUPowerPreference = 'high-performance'): Promise<GPUDevice> {
  const browserGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const proc = nodeProcess();
  let gpu: GPU | undefined = browserGpu;
  if (!gpu && proc) gpu = await nodeGpu(proc);
  if (!gpu) {
    throw new NoAdapterError('Engine.create', 'this browser has no WebGPU (navigator.gpu is undefined). Try a recent Chrome, Edge or Firefox.');
  }
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new NoAdapterError('Engine.create', INSTALL_HINT);
  return requestDeviceFrom(adapter);
}
