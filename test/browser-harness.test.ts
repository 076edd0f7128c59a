import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runInChromium } from './helpers/browser';
import type { SmokeResult } from './browser/webgpu-smoke';

const SMOKE_ENTRY = fileURLToPath(new URL('./browser/webgpu-smoke.ts', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));

// Entries for the failure paths need no repo imports, so they live in a temp folder.
const scratch = mkdtempSync(join(tmpdir(), 'anchorax-harness-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function scratchEntry(name: string, source: string): string {
  const file = join(scratch, name);
  writeFileSync(file, source);
  return file;
}

describe('runInChromium', () => {
  it('runs a WebGPU compute shader in headless Chromium', async () => {
    const { result, consoleErrors } = await runInChromium<SmokeResult>(SMOKE_ENTRY);

    expect(result.adapter.vendor.length + result.adapter.architecture.length).toBeGreaterThan(0);
    expect(result.input).toHaveLength(5);
    expect(result.output).toHaveLength(5);
    result.input.forEach((x, i) => {
      // Doubling is exact in f32.
      expect(result.output[i]).toBe(2 * x);
    });
    expect(consoleErrors).toEqual([]);
  });

  it("rethrows the page's error with its message and stack", async () => {
    const entry = scratchEntry(
      'throws.ts',
      `function failDeepInThePage(): never { throw new RangeError('boom from the page'); }
export default async function run(): Promise<number> { console.error('about to fail'); failDeepInThePage(); }
`,
    );
    const err: unknown = await runInChromium<number>(entry).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const e = err as Error;
    expect(e.name).toBe('RangeError');
    expect(e.message).toContain('boom from the page');
    expect(e.message).toContain('about to fail');
    expect(e.stack).toContain('failDeepInThePage');
  });

  it('times out on an entry that never settles, still saving the screenshot', async () => {
    const entry = scratchEntry('hangs.ts', `export default () => new Promise<never>(() => undefined);\n`);
    const shot = join(ARTIFACTS, 'harness-timeout.png');
    rmSync(shot, { force: true });
    await expect(runInChromium<never>(entry, { timeoutMs: 1_500, screenshot: shot })).rejects.toThrow(
      /no result before the timeout/,
    );
    expect(existsSync(shot)).toBe(true);
  });
});
