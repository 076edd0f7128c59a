// Runs a TS module in headless Chromium (Debian's, via puppeteer-core) and returns what its
// default export resolves to. The module is bundled with vite so it can import the repo's src/
// and `.wgsl?raw` files exactly as library users would.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { build } from 'vite';
import { wgslReflect } from '../../scripts/vite-wgsl-reflect';

export const CHROMIUM_PATH: string = process.env.ANCHORAX_CHROMIUM ?? '/usr/bin/chromium';

/** Flags besides puppeteer's defaults; puppeteer itself adds `--headless=new`. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  // Root in containers: Chromium refuses to start sandboxed.
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface RunInChromiumOptions {
  /** Time allowed for the page to load and the entry to settle (default 90 s). */
  timeoutMs?: number;
  /** Where to save a PNG of the page once the entry settled (or failed). */
  screenshot?: string;
}

export interface RunInChromiumResult<T> {
  result: T;
  /** console.error messages and uncaught page errors, in order. */
  consoleErrors: string[];
}

// What the generated bootstrap leaves on `window`.
interface PageOutcome {
  __anchoraxResult?: string | undefined;
  __anchoraxError?: { name: string; message: string; stack: string } | undefined;
}

const DEFAULT_TIMEOUT_MS = 90_000;
const LAUNCH_TIMEOUT_MS = 30_000;
const CLOSE_GRACE_MS = 5_000;
const PID_DIR_ENV = 'ANCHORAX_BROWSER_PID_DIR';

const MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>anchorax browser run</title>
<link rel="icon" href="data:,"></head>
<body><script type="module" src="./bootstrap.ts"></script></body></html>
`;

function bootstrapSource(entryImport: string): string {
  // JSON is made in the page so typed arrays arrive as arrays instead of index-keyed objects.
  return `import run from ${JSON.stringify(entryImport)};
const replacer = (_key: string, v: unknown): unknown =>
  ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number>) : v;
const w = window as unknown as Record<string, unknown>;
Promise.resolve()
  .then(() => run())
  .then(
    (value: unknown) => { w.__anchoraxResult = JSON.stringify(value, replacer) ?? 'null'; },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      w.__anchoraxError = { name: e.name, message: e.message, stack: e.stack ?? '' };
    },
  );
`;
}

function delay(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

async function bundle(entry: string, workDir: string): Promise<string> {
  const srcDir = join(workDir, 'src');
  const outDir = join(workDir, 'dist');
  mkdirSync(srcDir, { recursive: true });
  let entryImport = relative(srcDir, entry).split(sep).join('/');
  if (!entryImport.startsWith('.')) entryImport = `./${entryImport}`;
  writeFileSync(join(srcDir, 'index.html'), INDEX_HTML);
  writeFileSync(join(srcDir, 'bootstrap.ts'), bootstrapSource(entryImport));
  await build({
    root: srcDir,
    base: './',
    configFile: false,
    plugins: [wgslReflect()],
    envFile: false,
    publicDir: false,
    cacheDir: join(workDir, 'vite-cache'),
    mode: 'production',
    logLevel: 'error',
    build: {
      outDir,
      emptyOutDir: true,
      target: 'esnext',
      // Readable stacks when the page throws.
      minify: false,
      reportCompressedSize: false,
      chunkSizeWarningLimit: 100_000,
      rolldownOptions: {
        input: join(srcDir, 'index.html'),
        // Node-only paths of src/ (Dawn) must not be pulled into a page bundle.
        external: ['webgpu', /^node:/],
      },
    },
  });
  return outDir;
}

async function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = resolve(root, `.${path.endsWith('/') ? `${path}index.html` : path}`);
    // Stay inside the bundle folder.
    if ((file !== root && !file.startsWith(root + sep)) || !existsSync(file)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const body = readFileSync(file);
      res.writeHead(200, {
        'content-type': MIME[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const { port } = server.address() as AddressInfo;
  // 127.0.0.1 counts as a secure context, which navigator.gpu requires.
  return { server, url: `http://127.0.0.1:${port}/index.html` };
}

function killGroup(pid: number): void {
  // Puppeteer starts Chromium detached, so -pid reaches the GPU/renderer helpers too.
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function pageError(outcome: NonNullable<PageOutcome['__anchoraxError']>, consoleErrors: string[]): Error {
  const extra = consoleErrors.length > 0 ? `\n[page console errors]\n${consoleErrors.join('\n')}` : '';
  const err = new Error(`in Chromium: ${outcome.message}${extra}`);
  err.name = outcome.name;
  err.stack = `${outcome.name}: in Chromium: ${outcome.message}\n[page stack]\n${outcome.stack}${extra}`;
  return err;
}

async function awaitOutcome(page: Page, deadline: number, consoleErrors: string[]): Promise<PageOutcome> {
  try {
    await page.waitForFunction(
      () => {
        const w = globalThis as unknown as PageOutcome;
        return w.__anchoraxResult !== undefined || w.__anchoraxError !== undefined;
      },
      { timeout: Math.max(1, deadline - Date.now()), polling: 50 },
    );
  } catch (cause) {
    const seen = consoleErrors.length > 0 ? `; page errors so far:\n${consoleErrors.join('\n')}` : '';
    throw new Error(`runInChromium: no result before the timeout${seen}`, { cause });
  }
  return page.evaluate(() => {
    const w = globalThis as unknown as PageOutcome;
    return { __anchoraxResult: w.__anchoraxResult, __anchoraxError: w.__anchoraxError };
  });
}

/**
 * Bundles `entry` (absolute path; default export `async () => T`, T JSON-serialisable; typed
 * arrays come back as plain arrays), opens it in headless Chromium with WebGPU enabled and
 * returns the value. A rejection in the page is rethrown here with the page's message and stack.
 */
export async function runInChromium<T>(
  entry: string,
  opts: RunInChromiumOptions = {},
): Promise<RunInChromiumResult<T>> {
  if (!isAbsolute(entry)) throw new Error(`runInChromium: entry must be an absolute path: ${entry}`);
  if (!existsSync(entry)) throw new Error(`runInChromium: no such entry: ${entry}`);
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `runInChromium: ${CHROMIUM_PATH} not found; run: sudo apt-get update && sudo apt-get install -y chromium libvulkan1`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const workDir = mkdtempSync(join(tmpdir(), 'anchorax-browser-'));
  const consoleErrors: string[] = [];
  let server: Server | undefined;
  let browser: Browser | undefined;
  let pid: number | undefined;
  const pidDir = process.env[PID_DIR_ENV];
  const pidFile =
    pidDir !== undefined ? join(pidDir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`) : undefined;
  try {
    const outDir = await bundle(entry, workDir);
    const served = await serve(outDir);
    server = served.server;

    browser = await puppeteer.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      pipe: true,
      userDataDir: join(workDir, 'profile'),
      args: [...CHROMIUM_FLAGS],
      timeout: LAUNCH_TIMEOUT_MS,
      // The test runner owns signals; we always close in finally.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    pid = browser.process()?.pid;
    if (pid !== undefined && pidFile !== undefined && pidDir !== undefined && existsSync(pidDir)) {
      // Line 1: pid, line 2: folder to delete, for global-setup's teardown if this worker dies.
      writeFileSync(pidFile, `${pid}\n${workDir}\n`);
    }

    const page = await browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = msg.location().url;
      consoleErrors.push(`console.error: ${msg.text()}${where ? ` (${where})` : ''}`);
    });
    page.on('pageerror', (err) => {
      consoleErrors.push(`pageerror: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    });

    const deadline = Date.now() + timeoutMs;
    let outcome: PageOutcome;
    try {
      await page.goto(served.url, { waitUntil: 'load', timeout: timeoutMs });
      outcome = await awaitOutcome(page, deadline, consoleErrors);
    } finally {
      if (opts.screenshot !== undefined) {
        mkdirSync(dirname(opts.screenshot), { recursive: true });
        await page.screenshot({ path: opts.screenshot as `${string}.png` }).catch(() => undefined);
      }
    }

    if (outcome.__anchoraxError !== undefined) throw pageError(outcome.__anchoraxError, consoleErrors);
    const json = outcome.__anchoraxResult ?? 'null';
    return { result: JSON.parse(json) as T, consoleErrors };
  } finally {
    if (browser !== undefined) {
      const proc = browser.process();
      await Promise.race([browser.close().catch(() => undefined), delay(CLOSE_GRACE_MS)]);
      // Close may leave helpers behind (or hang); the group kill is a no-op when all exited.
      if (pid !== undefined) killGroup(pid);
      if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
        await Promise.race([new Promise((res) => proc.once('exit', res)), delay(CLOSE_GRACE_MS)]);
      }
    }
    if (pidFile !== undefined) rmSync(pidFile, { force: true });
    if (server !== undefined) {
      const s = server;
      s.closeAllConnections();
      await new Promise<void>((res) => s.close(() => res()));
    }
    rmSync(workDir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  }
}

export interface BuiltPageOptions {
  /** Query string appended to index.html (e.g. `?hidden=32`). */
  search?: string;
  /** Viewport of the page (default 1200 × 800). */
  viewport?: { width: number; height: number };
  /** Runs before navigation (e.g. `page.evaluateOnNewDocument` to stub browser APIs). */
  beforeLoad?: (page: Page) => Promise<void>;
  /** Chromium flags (default {@link CHROMIUM_FLAGS}, which enable WebGPU). */
  flags?: readonly string[];
}

/**
 * Serves an already built static folder (`root`, holding index.html) on 127.0.0.1, opens it in
 * headless Chromium with WebGPU enabled and hands the page to `use`; console errors and page
 * errors are collected into the array passed along. Browser and server are closed afterwards.
 */
export async function withBuiltPage<T>(
  root: string,
  use: (page: Page, consoleErrors: string[]) => Promise<T>,
  opts: BuiltPageOptions = {},
): Promise<T> {
  if (!existsSync(join(root, 'index.html'))) throw new Error(`withBuiltPage: no index.html in ${root}`);
  const served = await serve(resolve(root));
  try {
    return await withPageAt(served.url, use, opts);
  } finally {
    served.server.closeAllConnections();
    await new Promise<void>((res) => served.server.close(() => res()));
  }
}

/**
 * Opens `url` (a page some server already serves, e.g. a Vite dev server) in headless Chromium
 * with WebGPU enabled and hands the page to `use`, as {@link withBuiltPage} does.
 */
export async function withPageAt<T>(
  url: string,
  use: (page: Page, consoleErrors: string[]) => Promise<T>,
  opts: BuiltPageOptions = {},
): Promise<T> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`withPageAt: ${CHROMIUM_PATH} not found`);
  const profileDir = mkdtempSync(join(tmpdir(), 'anchorax-page-'));
  const consoleErrors: string[] = [];
  let browser: Browser | undefined;
  let pid: number | undefined;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      pipe: true,
      userDataDir: profileDir,
      args: [...(opts.flags ?? CHROMIUM_FLAGS)],
      timeout: LAUNCH_TIMEOUT_MS,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    pid = browser.process()?.pid;
    const page = await browser.newPage();
    await page.setViewport(opts.viewport ?? { width: 1200, height: 800 });
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`console.error: ${msg.text()}`);
    });
    page.on('pageerror', (err) => {
      consoleErrors.push(`pageerror: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    });
    if (opts.beforeLoad) await opts.beforeLoad(page);
    await page.goto(`${url}${opts.search ?? ''}`, { waitUntil: 'load', timeout: 60_000 });
    return await use(page, consoleErrors);
  } finally {
    if (browser !== undefined) {
      await Promise.race([browser.close().catch(() => undefined), delay(CLOSE_GRACE_MS)]);
      if (pid !== undefined) killGroup(pid);
    }
    rmSync(profileDir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  }
}
