// Composed and user-WGSL layers in headless Chromium (navigator.gpu and Chromium's WGSL compiler,
// not Dawn-in-Node): the page (test/browser/layers-entry.ts) solves an MDEQ-style conv cell and a
// defineLayer layer; the fixed-work results are compared here with the float64 references.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LayersBrowserInput, LayersBrowserResult } from './browser/layers-entry';
import { runInChromium } from './helpers/browser';
import { maxAbsDiff, randomArray, rng } from './helpers/engine';
import { refConv2dForward, refGroupNormForward, refPicard } from '../src/reference';

const f32 = (a: ArrayLike<number>): number[] => Array.from(Float32Array.from(a));
const random = rng(61);
const batch = 2;
const height = 5;
const width = 6;
const channels = 4;
const input: LayersBrowserInput = {
  conv: {
    height, width, channels, groups: 2,
    weight: f32(randomArray(random, 9 * channels * channels, 0.2)),
    bias: f32(randomArray(random, channels, 0.1)),
    gamma: f32(randomArray(random, channels, 1)),
    beta: f32(randomArray(random, channels, 0.2)),
  },
  convQd: f32(randomArray(random, batch * height * width * channels, 1)),
  batch,
  custom: {
    d: 7,
    a: f32(randomArray(random, 7, 0.8)),
    qd: f32(randomArray(random, batch * 7, 1)),
    forward: 'fn forward(row: u32, i: u32) -> f32 { return tanh(a[i] * state(row, i) + injected(row, i)); }',
    adjoint: `fn slope(row: u32, i: u32) -> f32 { let y = forward(row, i); return grad_output(row, i) * (1.0 - y * y); }
fn grad_input(row: u32, i: u32) -> f32 { return slope(row, i) * a[i]; }
fn grad_qd(row: u32, i: u32) -> f32 { return slope(row, i); }
fn grad_a(k: u32) -> f32 { var s = 0.0; for (var r = 0u; r < rows(); r++) { s += slope(r, k) * state(r, k); } return s; }`,
  },
};

describe('composed and WGSL layers in headless Chromium', () => {
  let page: LayersBrowserResult;
  let consoleErrors: string[];

  beforeAll(async () => {
    const dir = fileURLToPath(new URL('./artifacts/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const entry = `${dir}layers-browser-entry.ts`;
    writeFileSync(entry, `import run from '../browser/layers-entry';\nexport default () => run(${JSON.stringify(input)});\n`);
    ({ result: page, consoleErrors } = await runInChromium<LayersBrowserResult>(entry, { timeoutMs: 90_000 }));
  }, 120_000);

  it('ran without page errors; the deliberate WGSL mistake raised no uncaptured WebGPU error', () => {
    const deliberate = /unable to parse right side of \+ expression/;
    // Chromium may also log the compiler's message to the console; nothing else may appear.
    expect(consoleErrors.filter((m) => !deliberate.test(m))).toEqual([]);
    expect(page.uncapturedErrors).toEqual([]);
  });

  it('the conv2d + add(Qd) + groupNorm + relu cell: 4 picard steps equal the float64 reference', () => {
    const { conv } = input;
    const refConv = { height, width, inChannels: channels, outChannels: channels, weight: Float64Array.from(conv.weight), bias: Float64Array.from(conv.bias) };
    const refNorm = { groups: conv.groups, gamma: Float64Array.from(conv.gamma), beta: Float64Array.from(conv.beta), eps: 1e-5 };
    const qd = Float64Array.from(input.convQd);
    const cell = (u: Float64Array) => refGroupNormForward(refNorm, refConv2dForward(refConv, u).map((v, i) => v + qd[i]), batch).map((v) => Math.max(v, 0));
    const expected = refPicard(cell, new Float64Array(qd.length), { eps: 0, maxDepth: 4 });
    expect(page.convTnstep).toBe(expected.tnstep);
    expect(maxAbsDiff(page.convUStar, expected.uStar)).toBeLessThan(1e-4);
  });

  it('the defineLayer layer solves like its float64 twin', () => {
    const { d, a, qd } = input.custom;
    const map = (u: Float64Array) => u.map((v, k) => Math.tanh(a[k % d] * v + qd[k]));
    const expected = refPicard(map, new Float64Array(batch * d), { eps: 0, maxDepth: 10 });
    expect(maxAbsDiff(page.customUStar, expected.uStar)).toBeLessThan(1e-5);
  });

  it("Chromium's compile error reaches the user with the line of their forward WGSL", () => {
    expect(page.compileError?.name).toBe('ShaderCompileError');
    expect(page.compileError?.argument).toBe('forward');
    expect(page.compileError?.message).toMatch(/forward WGSL line 1/);
  });
});
