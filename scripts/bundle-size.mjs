#!/usr/bin/env node
// `node scripts/bundle-size.mjs [DIST_DIR]`: sizes of the built library (every .js file of dist/,
// raw and gzipped) and of a minimal app that imports it (`Engine`, `implicitBlock`, `picard`), bundled by esbuild
// with and without --minify. The app is bundled with --splitting so that what the library loads
// lazily (`import()`) lands in its own chunks, as any code-splitting bundler does; the report
// separates the entry chunk (what a page loads before its first solve) from the lazy chunks.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DIST = resolve(process.argv[2] ?? join(ROOT, 'dist'));
const ESBUILD = join(ROOT, 'node_modules', '.bin', 'esbuild');
/** A string of wgsl_reflect's parser (one of its parse-error messages). */
const REFLECT_MARK = 'Expected variable name';

const APP = `import { Engine, implicitBlock, picard } from ${JSON.stringify(join(DIST, 'anchorax.js'))};
const d = 8;
const engine = await Engine.create();
const f = implicitBlock(engine, { weight: new Float32Array(d * d), bias: new Float32Array(d) });
const r = await picard(f, engine.tensor(new Float32Array(d), [1, d]));
console.log(await r.uStar.read());
`;

function* jsFiles(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'types') yield* jsFiles(path);
    } else if (/\.m?js$/.test(name)) yield path;
  }
}

function kb(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function describe(files, base) {
  let total = 0;
  let totalGz = 0;
  const lines = [];
  for (const file of files) {
    const text = readFileSync(file);
    const gz = gzipSync(text, { level: 9 }).length;
    total += text.length;
    totalGz += gz;
    const reflect = text.includes(REFLECT_MARK) ? '  [wgsl_reflect]' : '';
    lines.push(`  ${relative(base, file).padEnd(36)} ${kb(text.length).padStart(11)}  gzip ${kb(gz).padStart(10)}${reflect}`);
  }
  lines.push(`  ${'total'.padEnd(36)} ${kb(total).padStart(11)}  gzip ${kb(totalGz).padStart(10)}`);
  return lines.join('\n');
}

console.log(`library (${relative(ROOT, DIST) || '.'}):`);
console.log(describe([...jsFiles(DIST)], DIST));

const work = mkdtempSync(join(tmpdir(), 'anchorax-size-'));
try {
  writeFileSync(join(work, 'app.mjs'), APP);
  for (const minify of [true, false]) {
    const out = join(work, minify ? 'min' : 'plain');
    execFileSync(
      ESBUILD,
      ['app.mjs', '--bundle', '--format=esm', '--splitting', `--outdir=${out}`, '--platform=browser', '--target=es2022',
        '--external:webgpu', '--external:node:*', '--log-level=warning', ...(minify ? ['--minify'] : [])],
      { cwd: work, stdio: 'inherit' },
    );
    const files = [...jsFiles(out)].sort((a, b) => (a.endsWith('app.js') ? -1 : b.endsWith('app.js') ? 1 : a.localeCompare(b)));
    console.log(`minimal app (esbuild --bundle --format=esm --splitting${minify ? ' --minify' : ''}; app.js is the entry chunk):`);
    console.log(describe(files, out));
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
