// The live training page end to end: build demo/ with its vite config, serve the static files on
// 127.0.0.1, open them in headless Chromium (SwiftShader WebGPU), train a small model, check the
// plots fill, the loss falls, the drawing pad predicts, and nothing logs an error. Also checks
// that a browser without WebGPU gets a message instead of an exception, one whose navigator.gpu
// gives no adapter gets browser advice, and that the model downloads as model.safetensors (loaded
// back in Node) and a file from Node loads into the page.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoState } from '../demo/main';
import { loadMnist } from '../demo/mnist/data';
import { DeqClassifier, INPUTS } from '../demo/mnist/model-io';
import { CHROMIUM_FLAGS, withBuiltPage } from './helpers/browser';
import { createTestEngine } from './helpers/engine';

const CONFIG = fileURLToPath(new URL('../demo/vite.config.ts', import.meta.url));
const SCREENSHOT = fileURLToPath(new URL('./artifacts/demo.png', import.meta.url));
// test/artifacts/ is git-ignored, so a fresh clone does not have it.
mkdirSync(dirname(SCREENSHOT), { recursive: true });
/** Small settings so SwiftShader trains visibly within the test's budget. */
const SEARCH = '?hidden=32&batch=32&lr=0.01&maxDepth=8&evalEvery=10&heldout=200';

function demoState(page: Page): Promise<DemoState> {
  return page.evaluate(() => (window as unknown as { __demoState: DemoState }).__demoState);
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('demo page in headless Chromium', () => {
  let outDir: string;

  beforeAll(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'anchorax-demo-'));
    await build({ configFile: CONFIG, logLevel: 'error', build: { outDir, emptyOutDir: true, reportCompressedSize: false } });
  }, 60_000);

  afterAll(() => {
    rmSync(outDir, { recursive: true, force: true });
  });

  it('trains live, plots, predicts a drawn digit, without console errors', async () => {
    const t0 = Date.now();
    const result = await withBuiltPage(
      outDir,
      async (page, consoleErrors) => {
        await page.waitForFunction(() => (window as unknown as { __demoState?: DemoState }).__demoState?.phase === 'ready', {
          timeout: 60_000,
          polling: 200,
        });
        await page.click('#start');
        await page.waitForFunction(
          () => {
            const s = (window as unknown as { __demoState: DemoState }).__demoState;
            if (s.phase === 'error' || s.steps < 30 || s.heldout.length < 3 || s.traceLength === 0) return false;
            const first = s.losses.slice(0, 5).reduce((a, b) => a + b, 0) / 5;
            const last = s.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
            return last < 0.8 * first;
          },
          { timeout: 90_000, polling: 250 },
        );

        // Draw a "7" on the pad with mouse events (Chromium turns them into pointer events).
        const box = await page.$eval('#pad', (c) => {
          const r = c.getBoundingClientRect();
          return { x: r.left, y: r.top, w: r.width, h: r.height };
        });
        const at = (fx: number, fy: number): [number, number] => [box.x + fx * box.w, box.y + fy * box.h];
        await page.mouse.move(...at(0.25, 0.2));
        await page.mouse.down();
        for (const [fx, fy] of [[0.5, 0.2], [0.75, 0.2], [0.65, 0.45], [0.55, 0.65], [0.48, 0.85]] as const) {
          await page.mouse.move(...at(fx, fy), { steps: 4 });
        }
        await page.mouse.up();
        await page.waitForFunction(() => (window as unknown as { __demoState: DemoState }).__demoState.sketchPrediction !== null, {
          timeout: 30_000,
          polling: 200,
        });
        await page.click('#pause');
        await page.waitForFunction(() => (window as unknown as { __demoState: DemoState }).__demoState.phase === 'paused', { timeout: 30_000 });
        const state = await demoState(page);
        const plotted = await page.$$eval('.uplot', (plots) => plots.length);
        const gridLabels = await page.$$eval('.cell span', (spans) => spans.map((s) => s.textContent ?? ''));
        await page.screenshot({ path: SCREENSHOT as `${string}.png` });
        return { state, plotted, gridLabels, consoleErrors: [...consoleErrors] };
      },
      { search: SEARCH },
    );
    const { state } = result;
    console.log(
      `demo: ${state.steps} steps, loss ${state.losses[0].toFixed(3)} → ${state.losses[state.losses.length - 1].toFixed(3)}, ` +
        `held-out ${state.heldout.map((h) => h.accuracy.toFixed(2)).join(' ')}, ${state.stepsPerSecond?.toFixed(1)} steps/s, ` +
        `sketch → ${state.sketchPrediction} (${state.sketchIterations} it), adapter "${state.adapter}", ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    expect(result.consoleErrors).toEqual([]);
    expect(state.gpuErrors).toEqual([]);
    expect(mean(state.losses.slice(-5))).toBeLessThan(0.8 * mean(state.losses.slice(0, 5)));
    expect(state.iterations.every((n) => n >= 1)).toBe(true);
    expect(state.heldout.length).toBeGreaterThanOrEqual(3);
    expect(state.traceLength).toBeGreaterThan(0);
    expect(result.plotted).toBe(6);
    // The per-sample view (the page's default convergence): each digit of the latest batch got
    // its own solve length, none longer than the batch's solve.
    expect(state.convergence).toBe('per-sample');
    const perDigit = state.iterationsPerDigit.filter((n): n is number => n !== null);
    expect(state.iterationsPerDigit).toHaveLength(10);
    expect(perDigit.length).toBeGreaterThanOrEqual(5);
    expect(perDigit.every((n) => n >= 1 && n <= state.iterations[state.iterations.length - 1])).toBe(true);
    // The spectral-radius plot gets a point every 5 steps: a finite radius of a block that trains.
    expect(state.radii.length).toBeGreaterThanOrEqual(Math.floor(state.steps / 5));
    expect(state.radii.every((r) => Number.isFinite(r.radius) && r.radius > 0 && r.radius < 10)).toBe(true);
    expect(state.radiusPlotted).toBe(state.radii.length);
    expect(result.gridLabels).toHaveLength(24);
    expect(result.gridLabels.every((l) => /^[0-9]$/.test(l))).toBe(true);
    expect(state.sketchPrediction).toBeGreaterThanOrEqual(0);
    expect(state.sketchPrediction).toBeLessThanOrEqual(9);
    expect(state.sketchIterations).toBeGreaterThanOrEqual(1);
  }, 150_000);

  it('downloads the model (Node loads it) and loads a model saved in Node, refusing a corrupt one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anchorax-demo-model-'));
    const engine = await createTestEngine();
    try {
      const nodeModel = await DeqClassifier.create(engine, { hidden: 16, solver: 'picard', seed: 5 });
      const nodeFile = await nodeModel.save(join(dir, 'node'));
      const data = await loadMnist({ seed: 0 });
      const heldout = 200; // SEARCH's heldout
      const nodeAccuracy = await nodeModel.evaluate(data.test.images.subarray(0, heldout * INPUTS), data.test.labels.subarray(0, heldout));
      nodeModel.dispose();
      const corrupt = join(dir, 'corrupt.safetensors');
      writeFileSync(corrupt, readFileSync(nodeFile).subarray(0, 100));
      const downloads = join(dir, 'downloads');
      mkdirSync(downloads);
      const state = await withBuiltPage(
        outDir,
        async (page, consoleErrors) => {
          const ready = () => page.waitForFunction(() => (window as unknown as { __demoState?: DemoState }).__demoState?.phase === 'ready', { timeout: 60_000, polling: 200 });
          await ready();
          const cdp = await page.createCDPSession();
          await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
          await page.click('#download');
          const downloaded = join(downloads, 'model.safetensors');
          for (let i = 0; i < 100 && !existsSync(downloaded); i++) await new Promise((r) => setTimeout(r, 200));
          const fromPage = await DeqClassifier.load(engine, downloaded);
          expect(fromPage.config.hidden).toBe(32); // SEARCH's hidden
          fromPage.dispose();
          const input = await page.$('input#load');
          if (!input) throw new Error('#load missing');
          await input.uploadFile(nodeFile);
          await page.waitForFunction(() => (window as unknown as { __demoState: DemoState }).__demoState.loadedFrom === 'model.safetensors', { timeout: 60_000, polling: 200 });
          await ready();
          const loaded = await demoState(page);
          const hidden = await page.$eval('input[name=hidden]', (i) => (i as HTMLInputElement).value);
          await input.uploadFile(corrupt);
          await page.waitForFunction(() => /Could not load corrupt/.test((window as unknown as { __demoState: DemoState }).__demoState.message), { timeout: 30_000, polling: 200 });
          const after = await demoState(page);
          return { loaded, hidden, after, consoleErrors: [...consoleErrors] };
        },
        { search: SEARCH },
      );
      expect(state.consoleErrors).toEqual([]);
      expect(state.hidden).toBe('16');
      expect(state.loaded.steps).toBe(0);
      // The same weights score the same 200 held-out digits in the page as in Node.
      expect(Math.abs(state.loaded.heldout[0].accuracy - nodeAccuracy)).toBeLessThanOrEqual(0.01);
      expect(state.after.phase).toBe('ready');
      expect(state.after.message).toMatch(/FormatError|source/);
      expect(state.after.loadedFrom).toBe('model.safetensors');
    } finally {
      engine.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('shows a message, not an exception, without WebGPU', async () => {
    const { state, consoleErrors, status } = await withBuiltPage(
      outDir,
      async (page, errors) => {
        await page.waitForFunction(() => (window as unknown as { __demoState?: DemoState }).__demoState?.phase === 'no-webgpu', {
          timeout: 30_000,
        });
        const status = await page.$eval('#status', (s) => s.textContent ?? '');
        return { state: await demoState(page), consoleErrors: [...errors], status };
      },
      {
        // A browser without WebGPU: navigator.gpu reads undefined before any page script runs.
        beforeLoad: (page) => page.evaluateOnNewDocument(() => Object.defineProperty(navigator, 'gpu', { value: undefined })).then(() => undefined),
      },
    );
    expect(state.phase).toBe('no-webgpu');
    expect(status).toMatch(/WebGPU/);
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('gives browser advice, not apt-get, when navigator.gpu gives no adapter', async () => {
    const status = await withBuiltPage(
      outDir,
      async (page) => {
        await page.waitForFunction(() => (window as unknown as { __demoState?: DemoState }).__demoState?.phase === 'no-webgpu', {
          timeout: 30_000,
        });
        return page.$eval('#status', (s) => s.textContent ?? '');
      },
      // Chromium without WebGPU enabled: navigator.gpu exists, requestAdapter() gives null.
      { flags: CHROMIUM_FLAGS.filter((f) => f !== '--enable-unsafe-webgpu').concat('--disable-gpu') },
    );
    expect(status).toMatch(/chrome:\/\/gpu/);
    expect(status).toMatch(/hardware acceleration/);
    expect(status).not.toMatch(/apt-get|npm install/);
  }, 60_000);
});
