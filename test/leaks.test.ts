// Leak warnings: a child Node process with --expose-gc (test/helpers/leak-child.ts) drops tensors
// undisposed, forces garbage collection and reports its console.warn calls.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./helpers/leak-child.ts', import.meta.url));
const viteNode = fileURLToPath(new URL('../node_modules/vite-node/dist/cli.mjs', import.meta.url));

async function warningsOf(mode: 'leak' | 'trace' | 'dispose' | 'off' | 'destroyed', env: Record<string, string> = {}): Promise<{ warnings: string[]; leakCount: number }> {
  const { stdout } = await run(process.execPath, ['--expose-gc', viteNode, child, mode], {
    env: { ...process.env, NODE_ENV: 'development', ...env },
    timeout: 90_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as { warnings: string[]; leakCount: number };
}

describe('leak warnings', () => {
  it('warn once, naming the shape (and with trace, the creation site), when undisposed results are collected', async () => {
    const [plain, traced] = await Promise.all([warningsOf('leak'), warningsOf('trace')]);
    for (const { warnings, leakCount } of [plain, traced]) {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/garbage-collected without dispose\(\)/);
      expect(warnings[0]).toMatch(/shape \[(2, 2|1)\]/);
      // 3 rounds × (prediction, zeros target, loss.grad, loss.total) = 12 tensors, all counted.
      expect(leakCount).toBe(12);
    }
    expect(plain.warnings[0]).toMatch(/leakWarnings: 'trace'/);
    expect(plain.warnings[0]).not.toMatch(/leak-child\.ts/);
    // Whichever of leakResult's tensors is collected first, its creation site is in leakResult.
    expect(traced.warnings[0]).toMatch(/Created at:\n(?:.*\n)*?.*at leakResult .*leak-child\.ts/);
  }, 120_000);

  it('stay silent when everything is disposed, when turned off, and after engine.destroy()', async () => {
    // Four child processes at once: each is mostly start-up (vite-node, Dawn).
    const runs = await Promise.all([warningsOf('dispose'), warningsOf('off'), warningsOf('leak', { NODE_ENV: 'production' }), warningsOf('destroyed')]);
    expect(runs).toEqual(Array.from({ length: 4 }, () => ({ warnings: [], leakCount: 0 })));
  }, 300_000);
});
