#!/usr/bin/env node
// Last step of `npm run build`: gives the relative imports of dist/types/**/*.d.ts explicit
// `.js` extensions. tsc copies the specifiers of src/ (written for `moduleResolution: Bundler`,
// so extensionless), but this package is `"type": "module"`, and TypeScript consumers that use
// `moduleResolution: node16/nodenext` cannot resolve `./engine` inside an ES module .d.ts.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const typesDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'types');

function* declarationFiles(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* declarationFiles(path);
    else if (name.endsWith('.d.ts')) yield path;
  }
}

// `from './x'`, `import('./x')`, `import './x'`: the quoted specifier is group 2.
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\2/g;

if (!existsSync(typesDir)) {
  process.stderr.write(`fix-dts-imports: ${typesDir} does not exist (run tsc -p tsconfig.build.json first)\n`);
  process.exit(1);
}

let rewritten = 0;
for (const file of declarationFiles(typesDir)) {
  const source = readFileSync(file, 'utf8');
  const fixed = source.replace(SPECIFIER, (match, lead, quote, spec) => {
    if (/\.(js|mjs|cjs|json)$/.test(spec)) return match;
    const target = resolve(dirname(file), spec);
    let withExt;
    if (existsSync(`${target}.d.ts`)) withExt = `${spec}.js`;
    else if (existsSync(join(target, 'index.d.ts'))) withExt = `${spec}/index.js`;
    else throw new Error(`fix-dts-imports: ${file}: cannot resolve ${spec}`);
    rewritten++;
    return `${lead}${quote}${withExt}${quote}`;
  });
  if (fixed !== source) writeFileSync(file, fixed);
}
process.stdout.write(`fix-dts-imports: ${rewritten} relative specifiers in dist/types given .js extensions\n`);
