// Vitest globalSetup (runs once, in the main vitest process). Nothing heavy: it hands workers a
// folder where runInChromium records each browser's pid and temp folder, so teardown can kill
// any Chromium (and delete its files) that a crashed or timed-out worker left behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BROWSER_PID_DIR_ENV = 'ANCHORAX_BROWSER_PID_DIR';

let pidDir: string | undefined;

export function setup(): void {
  pidDir = mkdtempSync(join(tmpdir(), 'anchorax-pids-'));
  // Workers are forked after globalSetup, so they inherit this.
  process.env[BROWSER_PID_DIR_ENV] = pidDir;
}

function killGroup(pid: number): void {
  // Puppeteer starts Chromium detached (own process group), so -pid reaches its helpers too.
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function teardown(): void {
  if (pidDir === undefined) return;
  // Files left here belong to runs whose worker died before its own cleanup.
  for (const name of readdirSync(pidDir)) {
    const [pidLine = '', workDir = ''] = readFileSync(join(pidDir, name), 'utf8').split('\n');
    const pid = Number.parseInt(pidLine, 10);
    if (Number.isInteger(pid) && pid > 0) killGroup(pid);
    if (workDir.includes('anchorax-browser-')) rmSync(workDir, { recursive: true, force: true });
  }
  rmSync(pidDir, { recursive: true, force: true });
  delete process.env[BROWSER_PID_DIR_ENV];
  pidDir = undefined;
}
