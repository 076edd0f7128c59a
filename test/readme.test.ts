// The README's quickstart, run exactly as written (only the package name is pointed at src/).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function quickstartSource(): string {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const match = /<!-- quickstart -->\s*```ts\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README has no <!-- quickstart --> ts block');
  return match[1];
}

describe('README quickstart', () => {
  afterEach(() => vi.restoreAllMocks());

  it('runs as written and each solver reaches the fixed point', async () => {
    const source = quickstartSource().replace("from 'anchorax'", `from '${root}src/index.ts'`);
    expect(source).toContain(`${root}src/index.ts`);
    mkdirSync(`${root}test/artifacts`, { recursive: true });
    const file = `${root}test/artifacts/quickstart.ts`;
    writeFileSync(file, source);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
    await import(/* @vite-ignore */ file);
    expect(lines).toHaveLength(3);
    for (const [line, name] of lines.map((l, i) => [l, ['picard', 'anderson', 'broyden'][i]] as const)) {
      const m = /^(\w+): (\d+) evaluations of f, ‖f\(u\) − u‖ = (\S+), u\[0\] = (\S+)$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(m?.[1]).toBe(name);
      expect(Number(m?.[2])).toBeGreaterThan(1);
      expect(Number(m?.[3])).toBeLessThan(1e-4);
      expect(Math.abs(Number(m?.[4]))).toBeLessThan(1);
    }
  });
});

describe('README training example', () => {
  afterEach(() => vi.restoreAllMocks());

  it('runs as written and the loss falls', async () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    const match = /<!-- training -->\s*```ts\n([\s\S]*?)```/.exec(readme);
    if (!match) throw new Error('README has no <!-- training --> ts block');
    const source = match[1].replace("from 'anchorax'", `from '${root}src/index.ts'`);
    mkdirSync(`${root}test/artifacts`, { recursive: true });
    const file = `${root}test/artifacts/training.ts`;
    writeFileSync(file, source);
    const losses: number[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      const m = /^step (\d+): loss (\S+)$/.exec(args.map(String).join(' '));
      if (m) losses.push(Number(m[2]));
    });
    await import(/* @vite-ignore */ file);
    expect(losses).toHaveLength(4);
    expect(losses[3]).toBeLessThan(0.5 * losses[0]);
  }, 300_000);
});

/** Runs the README's ts block tagged `<!-- tag -->` as written and returns what it logged. */
async function runReadmeBlock(tag: string): Promise<string[]> {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const match = new RegExp(`<!-- ${tag} -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match) throw new Error(`README has no <!-- ${tag} --> ts block`);
  const source = match[1].replace("from 'anchorax'", `from '${root}src/index.ts'`);
  mkdirSync(`${root}test/artifacts`, { recursive: true });
  const file = `${root}test/artifacts/${tag}.ts`;
  writeFileSync(file, source);
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
  await import(/* @vite-ignore */ file);
  return lines;
}

describe('README layer examples', () => {
  afterEach(() => vi.restoreAllMocks());

  it('the composed layer solves and returns gradients named by stage', async () => {
    const lines = await runReadmeBlock('layers');
    expect(lines[0]).toMatch(/^anderson: \d+ evaluations, converged: true$/);
    expect(lines[1]).toBe('gradients: 0.W, 0.b, 2.W, 2.b, 4.gamma, 4.beta, Qd');
  });

  it('the WGSL layer passes gradcheck and solves', async () => {
    const lines = await runReadmeBlock('define-layer');
    expect(lines[0]).toMatch(/^gradcheck passed\nu .*ok.*\nQd .*ok.*\na .*ok/);
    expect(Number(/^broyden: (\d+) evaluations$/.exec(lines[1] ?? '')?.[1])).toBeGreaterThan(1);
  });
});

describe('README saving and loading', () => {
  afterEach(() => vi.restoreAllMocks());

  it('saves to safetensors bytes and loads them back from a Blob', async () => {
    const lines = await runReadmeBlock('params');
    const m = /^w, b: (\d+) bytes, w\[1\] = (\S+)$/.exec(lines[0] ?? '');
    expect(m, lines[0]).not.toBeNull();
    expect(Number(m?.[1])).toBeGreaterThan(8 + 4 * (16 * 16 + 16));
    expect(m?.[2]).toBe((Math.sin(1) / 16).toFixed(4));
  });
});
