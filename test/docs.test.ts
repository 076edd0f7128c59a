// `npm run docs` (scripts/docs.mjs): TypeDoc, from its own package tools/typedoc, writes the API
// reference from src/index.ts's TSDoc; @internal members stay out of it. ~20 s on 2 cores.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
let out: string | undefined;
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('npm run docs', () => {
  it('generates the API reference from the TSDoc', async () => {
    out = await mkdtemp(join(tmpdir(), 'anchorax-docs-'));
    await promisify(execFile)(process.execPath, [join(root, 'scripts/docs.mjs'), '--out', out], { cwd: root, timeout: 170_000 });
    const engine = await readFile(join(out, 'classes/Engine.html'), 'utf8');
    expect(engine).toContain('Finds a WebGPU device');
    expect(engine).toMatch(/id="scope"/);
    expect(engine).not.toMatch(/trackTensor|assertAlive/); // @internal
    const picard = await readFile(join(out, 'functions/picard.html'), 'utf8');
    expect(picard).toContain('by fixed-point iteration');
    const saveParams = await readFile(join(out, 'functions/saveParams.html'), 'utf8');
    expect(saveParams).toContain('safetensors');
  }, 180_000);
});
