// The README's quickstart, run exactly as written (only the package name is pointed at src/).
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { expectDefineLayerOutput, expectJacobianPenaltyOutput, expectLayersOutput, expectParamsOutput, expectQuickstartOutput, expectTrainingOutput, readmeBlock } from './helpers/readme';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('README quickstart', () => {
  afterEach(() => vi.restoreAllMocks());

  it('runs as written and each solver reaches the fixed point', async () => {
    const source = readmeBlock('quickstart').replace("from 'anchorax'", `from '${root}src/index.ts'`);
    expect(source).toContain(`${root}src/index.ts`);
    mkdirSync(`${root}test/artifacts`, { recursive: true });
    const file = `${root}test/artifacts/quickstart.ts`;
    writeFileSync(file, source);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
    await import(/* @vite-ignore */ file);
    expectQuickstartOutput(lines);
  });
});

describe('README training example', () => {
  afterEach(() => vi.restoreAllMocks());

  it('runs as written and the loss falls', async () => {
    const source = readmeBlock('training').replace("from 'anchorax'", `from '${root}src/index.ts'`);
    mkdirSync(`${root}test/artifacts`, { recursive: true });
    const file = `${root}test/artifacts/training.ts`;
    writeFileSync(file, source);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
    await import(/* @vite-ignore */ file);
    expectTrainingOutput(lines);
  }, 300_000);
});

/** Runs the README's ts block tagged `<!-- tag -->` as written and returns what it logged. */
async function runReadmeBlock(tag: string): Promise<string[]> {
  const source = readmeBlock(tag).replace("from 'anchorax'", `from '${root}src/index.ts'`);
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
    expectLayersOutput(await runReadmeBlock('layers'));
  });

  it('the WGSL layer passes gradcheck and solves', async () => {
    expectDefineLayerOutput(await runReadmeBlock('define-layer'));
  });
});

describe('README stability example', () => {
  afterEach(() => vi.restoreAllMocks());

  it('trains with the Jacobian penalty: the penalty falls and f stays a contraction', async () => {
    expectJacobianPenaltyOutput(await runReadmeBlock('jacobian-penalty'));
  });
});

describe('README saving and loading', () => {
  afterEach(() => vi.restoreAllMocks());

  it('saves to safetensors bytes and loads them back from a Blob', async () => {
    expectParamsOutput(await runReadmeBlock('params'));
  });
});

describe('README per-sample convergence', () => {
  afterEach(() => vi.restoreAllMocks());

  it('gives each row its own iteration count, the slowest one the solve\'s', async () => {
    const lines = await runReadmeBlock('per-sample');
    const m = /^iterations per row: (\d+), (\d+), (\d+), (\d+); solve: (\d+)$/.exec(lines[0] ?? '');
    expect(m, lines.join('\n')).not.toBeNull();
    const rows = (m ?? []).slice(1, 5).map(Number);
    expect(Number(m?.[5])).toBe(Math.max(...rows));
    expect(new Set(rows).size, lines[0]).toBeGreaterThan(1);
  });
});
