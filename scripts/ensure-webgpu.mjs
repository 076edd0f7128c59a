#!/usr/bin/env node
// Makes sure this machine can run anchorax's tests: a WebGPU adapter in Node (the `webgpu`
// package, Dawn) and Debian's Chromium for the browser tests. Installs what is missing with
// apt when it can (root + apt-get), otherwise prints the command and exits 1.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM = process.env.ANCHORAX_CHROMIUM || '/usr/bin/chromium';
const APT_PACKAGES = ['chromium', 'libvulkan1'];
const MANUAL_COMMAND = `sudo apt-get update && sudo apt-get install -y ${APT_PACKAGES.join(' ')}`;
const PROBE_TIMEOUT_MS = 60_000;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function log(msg) {
  process.stdout.write(`ensure-webgpu: ${msg}\n`);
}

function webgpuModuleUrl() {
  try {
    return pathToFileURL(createRequire(resolve(repoRoot, 'package.json')).resolve('webgpu')).href;
  } catch {
    return null;
  }
}

// Runs in a child so env (VK_ICD_FILENAMES) is read fresh by Dawn, and so Dawn's
// keep-alive cannot hold this script open. Asks for a device too: some Vulkan drivers
// (e.g. Debian 12's lavapipe) give an adapter that Dawn then refuses.
const PROBE_SOURCE = `
const { create } = await import(process.argv[1]);
let out = { ok: false, reason: 'no adapter' };
try {
  const adapter = await create([]).requestAdapter();
  if (adapter) {
    const info = adapter.info;
    const device = await adapter.requestDevice();
    out = {
      ok: true,
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
    };
    device.destroy();
  }
} catch (err) {
  out = { ok: false, reason: String(err && err.message ? err.message : err) };
}
process.stdout.write('@@probe ' + JSON.stringify(out) + '\\n');
process.exit(0);
`;

function probeNodeAdapter(extraEnv) {
  const url = webgpuModuleUrl();
  if (!url) return { ok: false, reason: "the 'webgpu' package is not installed (run npm ci)" };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE_SOURCE, url], {
    cwd: repoRoot,
    env: { ...process.env, ...extraEnv },
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const line = (r.stdout || '').split('\n').find((l) => l.startsWith('@@probe '));
  if (line) {
    try {
      return JSON.parse(line.slice('@@probe '.length));
    } catch {
      // fall through to the generic failure below
    }
  }
  const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
  return { ok: false, reason: `probe failed (${why}): ${(r.stderr || '').trim().slice(-800)}` };
}

function findAdapter() {
  const plain = probeNodeAdapter({});
  if (plain.ok) return { ...plain, env: null };
  if (existsSync(SWIFTSHADER_ICD) && process.env.VK_ICD_FILENAMES !== SWIFTSHADER_ICD) {
    const swift = probeNodeAdapter({ VK_ICD_FILENAMES: SWIFTSHADER_ICD });
    if (swift.ok) return { ...swift, env: `VK_ICD_FILENAMES=${SWIFTSHADER_ICD}` };
    return { ...swift, env: null };
  }
  return { ...plain, env: null };
}

function check() {
  const adapter = findAdapter();
  const chromium = existsSync(CHROMIUM);
  return { adapter, chromium, ok: adapter.ok && chromium };
}

function describeProblems(state) {
  const problems = [];
  if (!state.adapter.ok) problems.push(`no WebGPU adapter in Node (${state.adapter.reason})`);
  if (!state.chromium) problems.push(`${CHROMIUM} not found (browser tests need it)`);
  return problems.join('; ');
}

function hasAptGet() {
  return spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
}

function runStreaming(cmd, args) {
  log(`running: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    log(`${cmd} ${args[0]} failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`})`);
    return false;
  }
  return true;
}

function success(state) {
  const a = state.adapter;
  const what = [a.vendor, a.architecture, a.description || a.device].filter(Boolean).join(' / ');
  const via = a.env ? ` via ${a.env}` : '';
  log(`Node WebGPU adapter: ${what || 'unnamed'}${via}; chromium: ${CHROMIUM}`);
  process.exit(0);
}

if (!webgpuModuleUrl()) {
  // apt cannot fix this one.
  log("the 'webgpu' npm package is not installed: run `npm ci` first");
  process.exit(1);
}

let state = check();
if (state.ok) success(state);

log(describeProblems(state));
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && hasAptGet()) {
  const installed =
    runStreaming('apt-get', ['update']) &&
    runStreaming('apt-get', ['install', '-y', ...APT_PACKAGES]);
  if (installed) {
    state = check();
    if (state.ok) success(state);
    log(`still missing after apt install: ${describeProblems(state)}`);
  }
  process.exit(1);
}

log('install the missing system packages, then rerun:');
process.stdout.write(`  ${MANUAL_COMMAND}\n`);
process.exit(1);
