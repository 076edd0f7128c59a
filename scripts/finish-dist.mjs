#!/usr/bin/env node
// Last step of `npm run build` (after fix-dts-imports.mjs):
// - dist/require.cjs, the `require` export condition (scripts/require.cjs);
// - dist/types/webgpu-globals.d.ts: the WebGPU interfaces the declarations name, declared as
//   *empty global interfaces*. They merge with the full declarations of TypeScript's DOM lib
//   (TypeScript 7's carries WebGPU) or of @webgpu/types when a consumer has them, and stand
//   alone under `lib: es2022`. Type aliases (string unions, flag numbers) cannot merge, so the
//   build fails if the declarations use a GPU name not known to be an interface;
// - removes the declaration files the two entries do not reach (modules whose exports are all
//   `@internal` are emitted empty by stripInternal), and checks that no `reference/` file is left.
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const typesDir = join(dist, 'types');
const GLOBALS = 'webgpu-globals.d.ts';

/** WebGPU names that are interfaces in lib.dom, TypeScript 7's lib and @webgpu/types alike. */
const INTERFACES = new Set([
  'GPU', 'GPUAdapter', 'GPUAdapterInfo', 'GPUBindGroup', 'GPUBindGroupLayout', 'GPUBuffer',
  'GPUCommandBuffer', 'GPUCommandEncoder', 'GPUCompilationInfo', 'GPUCompilationMessage',
  'GPUComputePassEncoder', 'GPUComputePipeline', 'GPUDevice', 'GPUDeviceLostInfo', 'GPUError',
  'GPUPipelineLayout', 'GPUQuerySet', 'GPUQueue', 'GPUShaderModule', 'GPUSupportedFeatures',
  'GPUSupportedLimits', 'GPUTexture', 'GPUTextureView',
]);

function fail(message) {
  process.stderr.write(`finish-dist: ${message}\n`);
  process.exit(1);
}

function* declarationFiles(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* declarationFiles(path);
    else if (name.endsWith('.d.ts') && name !== GLOBALS) yield path;
  }
}

if (!existsSync(join(typesDir, 'index.d.ts'))) fail('dist/types/index.d.ts is missing (run tsc -p tsconfig.build.json first)');
copyFileSync(join(root, 'scripts', 'require.cjs'), join(dist, 'require.cjs'));

// Declaration files reachable from the entries through relative specifiers; the rest go.
const reachable = new Set();
const pending = ['index.d.ts', 'node.d.ts'].map((f) => join(typesDir, f)).filter((f) => existsSync(f));
while (pending.length > 0) {
  const file = pending.pop();
  if (reachable.has(file)) continue;
  reachable.add(file);
  const code = readFileSync(file, 'utf8');
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)\.js["']/g)) {
    const target = resolve(dirname(file), `${m[1]}.d.ts`);
    if (!existsSync(target)) fail(`${relative(typesDir, file)} imports ${m[1]}.js, which has no declaration file`);
    pending.push(target);
  }
}
let pruned = 0;
for (const file of [...declarationFiles(typesDir)]) {
  if (reachable.has(file)) continue;
  rmSync(file);
  if (existsSync(`${file}.map`)) rmSync(`${file}.map`);
  pruned++;
}
for (const dir of readdirSync(typesDir)) {
  const path = join(typesDir, dir);
  if (statSync(path).isDirectory() && [...declarationFiles(path)].length === 0) rmSync(path, { recursive: true });
}

const used = new Set();
for (const file of declarationFiles(typesDir)) {
  const rel = relative(typesDir, file);
  if (rel.startsWith('reference')) fail(`${rel}: reference/ is not part of the published types`);
  // Comments are not code: drop them before looking for names and @internal.
  const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const m of code.matchAll(/\bGPU[A-Z]\w*/g)) used.add(m[0]);
}
const notInterfaces = [...used].filter((name) => !INTERFACES.has(name)).sort();
if (notInterfaces.length > 0) {
  fail(`the declarations use ${notInterfaces.join(', ')}, not known to be an interface in every WebGPU typing: ` +
    'keep it out of public signatures (or add it to INTERFACES if it is one)');
}

const names = [...used].sort();
writeFileSync(
  join(typesDir, GLOBALS),
  '// WebGPU interfaces the declarations of anchorax name. Empty on purpose: they merge with the\n' +
    "// full declarations of TypeScript's DOM lib or of @webgpu/types, and stand alone without them.\n" +
    'export {};\ndeclare global {\n' +
    names.map((n) => `  interface ${n} {}\n`).join('') +
    '}\n',
);
const index = join(typesDir, 'index.d.ts');
const reference = `/// <reference path="./${GLOBALS}" />\n`;
const source = readFileSync(index, 'utf8');
if (!source.startsWith(reference)) writeFileSync(index, reference + source);
process.stdout.write(`finish-dist: dist/require.cjs; ${pruned} unreachable declaration files removed; ${GLOBALS} declares ${names.join(', ')}\n`);
