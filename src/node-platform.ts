/**
 * @internal The Node host: Dawn (the optional peer dependency `webgpu`) as the WebGPU
 * implementation, apt advice when no adapter is found, and files through `node:fs/promises`.
 * Imported by `src/node.ts` (the package's `node` entry) and by the repo's own Node scripts and
 * tests; never by the browser entry.
 *
 * Quiet start on machines without a GPU: Mesa's `VK_LAYER_MESA_device_select` layer prints
 * `XDG_RUNTIME_DIR is invalid` through libwayland, and Dawn warns while probing Mesa's lavapipe
 * before SwiftShader. While the Dawn instance connects to Vulkan we set `NODEVICE_SELECT=1`
 * (when unset) and, when the machine has no GPU device node, point `VK_ICD_FILENAMES` straight
 * at SwiftShader's ICD (when neither it nor `VK_DRIVER_FILES` is set). Both are restored once
 * the instance has its adapter, so child processes do not inherit them.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { NoAdapterError } from './errors';
import { registerPlatform } from './platform';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** The `webgpu` versions this package is tested with (its optional peer dependency range). */
const WEBGPU_RANGE = '^0.6.2';
const APT_HINT =
  'no WebGPU adapter found. On Debian/Ubuntu install a Vulkan loader and SwiftShader with ' +
  '`sudo apt-get update && sudo apt-get install -y chromium libvulkan1` (or run on a machine with a GPU driver).';
const MISSING_WEBGPU_HINT =
  `Node needs the optional peer dependency \`webgpu\` (Dawn for Node, ${WEBGPU_RANGE}), which is not installed: ` +
  '`npm install webgpu`.';

/** True when the machine shows a GPU device node (DRM render node, NVIDIA, WSL's /dev/dxg). */
function hasGpuDeviceNode(): boolean {
  if (existsSync('/dev/dxg')) return true;
  const nodesIn = (dir: string, prefix: string): boolean => {
    try {
      return readdirSync(dir).some((name) => name.startsWith(prefix));
    } catch {
      return false;
    }
  };
  return nodesIn('/dev/dri', 'renderD') || nodesIn('/dev', 'nvidia');
}

/** Sets `vars` (only those unset) while `body` runs, then restores the environment. */
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const added = Object.keys(vars).filter((k) => process.env[k] === undefined);
  for (const k of added) process.env[k] = vars[k];
  try {
    return await body();
  } finally {
    for (const k of added) delete process.env[k];
  }
}

type Dawn = { create(flags: string[]): GPU };

async function loadDawn(): Promise<Dawn> {
  try {
    return (await import('webgpu')) as Dawn;
  } catch {
    throw new NoAdapterError('Engine.create', MISSING_WEBGPU_HINT);
  }
}

/**
 * Dawn instances made here. They must outlive every device made from them: when the GC
 * collects an instance whose device is still in use, dawn.node crashes the process a few
 * hundred milliseconds later (seen as futex/mutex assertion failures). So they are never released.
 */
const dawnInstances: GPU[] = [];

/** A Dawn instance connected to Vulkan (its first adapter request made under `vars`). */
async function dawnInstance(dawn: Dawn, vars: Record<string, string>): Promise<{ gpu: GPU; found: boolean }> {
  return withEnv(vars, async () => {
    const gpu = dawn.create([]);
    dawnInstances.push(gpu);
    return { gpu, found: (await gpu.requestAdapter()) !== null };
  });
}

async function createNodeGpu(): Promise<GPU> {
  const dawn = await loadDawn();
  const quiet = { NODEVICE_SELECT: '1' };
  const icdChosen = process.env.VK_ICD_FILENAMES !== undefined || process.env.VK_DRIVER_FILES !== undefined;
  const swiftshader = !icdChosen && existsSync(SWIFTSHADER_ICD) ? { ...quiet, VK_ICD_FILENAMES: SWIFTSHADER_ICD } : undefined;
  if (swiftshader && !hasGpuDeviceNode()) return (await dawnInstance(dawn, swiftshader)).gpu;
  const first = await dawnInstance(dawn, quiet);
  if (first.found || !swiftshader) return first.gpu;
  return (await dawnInstance(dawn, swiftshader)).gpu;
}

let nodeGpu: Promise<GPU> | undefined;

registerPlatform({
  gpu: () => {
    nodeGpu ??= createNodeGpu();
    // A failed attempt (e.g. `webgpu` missing) is retried next time.
    nodeGpu.catch(() => (nodeGpu = undefined));
    return nodeGpu;
  },
  noAdapterHint: APT_HINT,
  readFile: async (path) => new Uint8Array(await readFile(path)),
  writeFile: (path, data) => writeFile(path, data),
  spinsWhileWaiting: true,
});
