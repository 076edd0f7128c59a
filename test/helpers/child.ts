// Plain `node` children that import the *built* package by its own name (self-reference through
// package.json "exports"), as a user's script would: the build they need, and a runner.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DIST_JS = join(ROOT, 'dist', 'anchorax.js');
export const DIST_DTS = join(ROOT, 'dist', 'types', 'index.d.ts');
/** Inputs of the build: dist/ older than any of them is rebuilt. */
const BUILD_INPUTS = ['src', 'shaders', 'scripts', 'vite.config.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];
/** What the build writes: all of it must be newer than every input. */
const BUILD_OUTPUTS = ['anchorax.js', 'node.js', 'require.cjs', 'types/index.d.ts', 'types/webgpu-globals.d.ts'];
/** Held while one test file builds, so two files never build into dist/ at once. */
const BUILD_LOCK = join(ROOT, 'node_modules', '.anchorax-build-lock');

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(path).reduce((m, name) => Math.max(m, newestMtime(join(path, name))), st.mtimeMs);
}

function distIsCurrent(): boolean {
  const outputs = BUILD_OUTPUTS.map((p) => join(ROOT, 'dist', p));
  if (!outputs.every((p) => existsSync(p))) return false;
  const built = Math.min(...outputs.map((p) => statSync(p).mtimeMs));
  const inputs = BUILD_INPUTS.map((p) => join(ROOT, p)).filter((p) => existsSync(p));
  return inputs.every((p) => newestMtime(p) <= built);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs `npm run build` unless dist/ is newer than every input. */
export function ensureBuilt(): void {
  const deadline = Date.now() + 240_000;
  for (;;) {
    if (distIsCurrent()) return;
    try {
      mkdirSync(BUILD_LOCK);
      break;
    } catch {
      // Another file is building: wait for it, then look again. A stale lock (a killed build)
      // is taken over after the deadline.
      if (Date.now() > deadline) {
        rmSync(BUILD_LOCK, { recursive: true, force: true });
        continue;
      }
      sleepSync(200);
    }
  }
  try {
    if (distIsCurrent()) return;
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000, killSignal: 'SIGKILL' });
    if (r.status !== 0) {
      throw new Error(`npm run build failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${r.stdout}\n${r.stderr}`);
    }
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command args` in `cwd` with its output collected; SIGKILL after `timeoutMs` (a hang is a
 * failure with the output so far, not a stuck suite).
 */
export function runProcess(command: string, args: string[], cwd: string, timeoutMs: number): Promise<ChildOutcome> {
  return new Promise((res, rej) => {
    const start = Date.now();
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, timedOut, ms: Date.now() - start, stdout, stderr });
    });
  });
}

/** Runs `node <args>` from outside the repo (so `anchorax` resolves from the script's location). */
export function runNode(args: string[], timeoutMs: number): Promise<ChildOutcome> {
  return runProcess(process.execPath, args, resolve(ROOT, '..'), timeoutMs);
}
