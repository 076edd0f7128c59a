// saveParams / loadParams in headless Chromium (test/browser/params-entry.ts): the page saves
// random tensors to bytes, loads them back from a Blob, an ArrayBuffer and into a tensor
// (transposed), and loads a file Node wrote; Node checks the page's bytes with its own reader.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveParams, type Engine } from '../src';
import type { ParamsBrowserInput, ParamsBrowserResult } from './browser/params-entry';
import { runInChromium } from './helpers/browser';
import { createTestEngine, randomArray, rng } from './helpers/engine';

const f32 = (a: ArrayLike<number>): number[] => Array.from(Float32Array.from(a));
const random = rng(313);
const d = 5;
const w = f32(randomArray(random, d * d, 2));
const b = f32(randomArray(random, d, 2));
const nodeValues = { x: f32(randomArray(random, 6, 1)), y: f32(randomArray(random, 3, 1)) };

let engine: Engine;
let page: ParamsBrowserResult;
let consoleErrors: string[];

beforeAll(async () => {
  engine = await createTestEngine();
  const x = engine.tensor(nodeValues.x, [2, 3]);
  const y = engine.tensor(nodeValues.y, [3]);
  const input: ParamsBrowserInput = { w, b, d, fromNode: Array.from(await saveParams(engine, { x, y })) };
  x.dispose();
  y.dispose();
  const dir = fileURLToPath(new URL('./artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const entry = `${dir}params-browser-entry.ts`;
  writeFileSync(entry, `import run from '../browser/params-entry';\nexport default () => run(${JSON.stringify(input)});\n`);
  ({ result: page, consoleErrors } = await runInChromium<ParamsBrowserResult>(entry, { timeoutMs: 90_000 }));
}, 120_000);
afterAll(() => engine?.destroy());

describe('safetensors in headless Chromium', () => {
  it('ran without page or WebGPU errors', () => {
    expect(consoleErrors).toEqual([]);
    expect(page.uncapturedErrors).toEqual([]);
  });

  it("the page's bytes read by hand: header, F32 little-endian data of w then b", () => {
    const bytes = Uint8Array.from(page.saved);
    const view = new DataView(bytes.buffer);
    const headerLength = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
    expect(header).toEqual({
      __metadata__: { page: 'chromium' },
      w: { dtype: 'F32', shape: [d, d], data_offsets: [0, 4 * d * d] },
      b: { dtype: 'F32', shape: [d], data_offsets: [4 * d * d, 4 * (d * d + d)] },
    });
    const data = (offset: number, n: number) => Array.from({ length: n }, (_, i) => view.getFloat32(8 + headerLength + offset + 4 * i, true));
    expect(data(0, d * d)).toEqual(w);
    expect(data(4 * d * d, d)).toEqual(b);
  });

  it('loads back from a Blob and an ArrayBuffer, into a tensor transposed, and from Node', () => {
    expect(page.fromBlob).toEqual({ names: ['w', 'b'], w, b });
    expect(page.fromArrayBuffer.w).toEqual(w);
    expect(page.metadata).toEqual({ page: 'chromium' });
    expect(page.intoTransposed).toEqual(Array.from({ length: d * d }, (_, k) => w[(k % d) * d + Math.floor(k / d)]));
    expect(page.fromNode).toEqual(nodeValues);
  });

  it('a file path is an OptionError in the browser (paths need Node)', () => {
    expect(page.pathError).toEqual({ name: 'OptionError', argument: 'source' });
  });
});
