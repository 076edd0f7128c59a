// `npm run docs`: the API reference (docs/api, not committed) from the TSDoc of src/index.ts.
// TypeDoc needs TypeScript's JS compiler API (≤ 6.0) while the repository builds with the native
// TypeScript 7, so TypeDoc and TypeScript 5.9 live in their own package, tools/typedoc, installed
// here from its lockfile on first use.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tool = `${root}tools/typedoc`;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(`${tool}/node_modules/typedoc/package.json`)) {
  run(npm, ['ci', '--no-audit', '--no-fund'], tool);
}
run(process.execPath, [`${tool}/node_modules/typedoc/bin/typedoc`, '--options', 'typedoc.json', ...process.argv.slice(2)], root);
