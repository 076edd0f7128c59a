/**
 * `npm run bench:compare -- BASE [--rounds N] [--no-write] [bench flags…]`: the quick suite of an
 * earlier commit and of the working tree side by side, in one run, alternating
 * (BASE, working tree, BASE, working tree, … for N rounds) so that a change in the machine's load
 * hits both sides alike.
 *
 * BASE (a commit, e.g. 0edfd11) is checked out as a detached git worktree in a temp dir, with a
 * symlink to this checkout's node_modules when its package-lock.json is identical (else `npm ci`
 * there). Each side runs `npm run bench -- --quick --contenders none --out DIR [bench flags…]`
 * (`--out` to a temp dir rather than `--no-write`, which writes no JSON at all); the working tree
 * adds `--layers block,sequential`, which BASE does not have. Bench flags (`--sizes`, `--batches`,
 * `--repeats`, `--fused off`, …) go to both sides, and each must be one BASE's CLI reads.
 *
 * Prints, and appends to bench/RESULTS.md (not with `--no-write`), a table: per (solver, d, batch)
 * the median over the rounds of each side's µs/f-eval, the ratio working tree / BASE, and the
 * working tree's sequential(linear, add(Qd), tanh()) row with its ratio to the block of the same
 * run. The runs' JSON and logs stay in the temp dir it names.
 *
 * Defaults: 3 rounds of two suite runs per side, `--sizes 256,1024 --batches 1 --repeats 5` and
 * `--sizes 256 --batches 64 --repeats 5`, that is the quick sizes but d = 1024 at batch 64 (one
 * full quick run of the base took 5.4 minutes on the 2-core SwiftShader VM, 3.3 of them on that
 * size). Measured there on 2026-12-01 against 0edfd11 (at 2 repeats): base runs 0.5–1.1 minutes,
 * working-tree runs 1.5–5.3, 24 minutes in all; on 2026-12-04, 3 rounds took 2.3 minutes. Five
 * repeats, not two: a solve now and then takes several times the others (seen at d = 1024, batch 1:
 * one of 12 solves at 171 ms against 42–56), and the median of two is the larger. Any bench
 * flag replaces both sets with one run of those flags: `--sizes 256,1024 --batches 1,64` covers the
 * whole quick set, ≈ 16 minutes a round there. On a shared machine the load moves single runs by 2×
 * and more (the table gives each ratio's range over the rounds): run it on a quiet one, or add rounds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMain } from './cli';
import { compareRuns, comparisonTable, unknownFlags, worstRatios, type RunFile } from './compare-table';
import { machineName } from './settings';

/** Flags the comparison sets on both sides itself. */
const OWN_BENCH_FLAGS = ['--quick', '--contenders', '--out', '--layers', '--no-write'];

interface CompareOptions {
  base: string;
  rounds: number;
  write: boolean;
  /** Bench flag sets; each side runs the suite once per set and round. */
  flagSets: string[][];
}

/** The quick sizes but d = 1024 at batch 64, which alone takes longer than the rest. */
const DEFAULT_FLAG_SETS = [
  ['--sizes', '256,1024', '--batches', '1', '--repeats', '5'],
  ['--sizes', '256', '--batches', '64', '--repeats', '5'],
];

function parseArgs(argv: readonly string[]): CompareOptions {
  const args = argv.filter((a) => a !== '--');
  const usage = 'usage: npm run bench:compare -- BASE [--rounds N] [--no-write] [bench flags…]';
  const base = args[0];
  if (base === undefined || base.startsWith('--')) throw new Error(usage);
  let rounds = 3;
  let write = true;
  const flags: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (a === '--rounds') {
      rounds = Number(args[++i]);
      if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: a positive integer, got ${args[i]}`);
    } else if (a === '--no-write') {
      write = false;
    } else if (OWN_BENCH_FLAGS.includes(a)) {
      throw new Error(`${a}: the comparison sets it on both sides itself (${usage})`);
    } else {
      flags.push(a);
    }
  }
  return { base, rounds, write, flagSets: flags.length > 0 ? [flags] : DEFAULT_FLAG_SETS };
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** Makes the detached worktree of `commit` under `dir`, with node_modules, and returns its path. */
function checkoutBase(root: string, commit: string, dir: string): string {
  const tree = join(dir, 'base');
  git(root, 'worktree', 'add', '--detach', tree, commit);
  const sameLock = readFileSync(join(tree, 'package-lock.json'), 'utf8') === readFileSync(join(root, 'package-lock.json'), 'utf8');
  if (sameLock && existsSync(join(root, 'node_modules'))) {
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
    console.log(`base: package-lock.json identical, node_modules linked to ${join(root, 'node_modules')}`);
  } else {
    console.log('base: package-lock.json differs, running npm ci there…');
    execFileSync('npm', ['ci'], { cwd: tree, stdio: 'inherit' });
  }
  return tree;
}

/** One suite run of one side; returns the JSON it wrote. Its output goes to DIR/bench.log. */
function runSide(cwd: string, out: string, flags: readonly string[], label: string): RunFile {
  const log = openSync(`${out}.log`, 'w');
  const started = Date.now();
  const result = spawnSync('npm', ['run', 'bench', '--', '--quick', '--contenders', 'none', '--out', out, ...flags], { cwd, stdio: ['ignore', log, log] });
  closeSync(log);
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  if (result.status !== 0) {
    const tail = readFileSync(`${out}.log`, 'utf8').split('\n').slice(-30).join('\n');
    throw new Error(`${label} failed (exit ${result.status ?? result.signal}) after ${minutes} min; the end of ${out}.log:\n${tail}`);
  }
  const files = existsSync(out) ? readdirSync(out).filter((f) => f.startsWith('solvers-') && f.endsWith('.json')) : [];
  if (files.length !== 1) throw new Error(`${label}: expected one solvers-*.json in ${out}, found ${files.length}`);
  console.log(`${label}: ${minutes} min`);
  return JSON.parse(readFileSync(join(out, files[0]), 'utf8')) as RunFile;
}

function describeCommit(root: string, rev: string): string {
  return `${git(root, 'rev-parse', '--short', rev)} (${git(root, 'log', '-1', '--format=%s', rev)})`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
  let baseCommit: string;
  try {
    baseCommit = git(root, 'rev-parse', '--verify', '--quiet', `${options.base}^{commit}`);
  } catch {
    throw new Error(`BASE: ${options.base} is not a commit of this repository`);
  }
  const cli = ['bench/run.ts', 'bench/settings.ts'].map((path) => git(root, 'show', `${baseCommit}:${path}`)).join('\n');
  for (const flags of options.flagSets) {
    const unknown = unknownFlags(cli, ['--quick', '--contenders', '--out', ...flags]);
    if (unknown.length > 0) throw new Error(`the bench CLI of ${options.base} does not read --${unknown.join(', --')}: it would ignore them`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'anchorax-compare-'));
  const dirty = git(root, 'status', '--porcelain').length > 0;
  const workName = `${describeCommit(root, 'HEAD')}${dirty ? ' + uncommitted changes' : ''}`;
  const command = `npm run bench:compare -- ${process.argv.slice(2).filter((a) => a !== '--').join(' ')}`;
  console.log(`${command}\nbase ${describeCommit(root, baseCommit)} against the working tree ${workName}; runs under ${dir}`);
  const tree = checkoutBase(root, baseCommit, dir);
  const removeTree = () => git(root, 'worktree', 'remove', '--force', tree);
  // Ctrl-C skips `finally`: take the worktree away here too (the runs' files stay).
  process.once('SIGINT', () => {
    removeTree();
    process.exit(130);
  });
  const started = Date.now();
  const startStamp = new Date().toISOString();
  const sections: string[] = [];
  try {
    for (const [set, flags] of options.flagSets.entries()) {
      const base: RunFile[] = [];
      const work: RunFile[] = [];
      for (let round = 1; round <= options.rounds; round++) {
        const name = `set${set + 1}-round${round}`;
        const tag = `[${flags.join(' ')}] round ${round}/${options.rounds}`;
        base.push(runSide(tree, join(dir, `${name}-base`), flags, `${tag} base`));
        work.push(runSide(root, join(dir, `${name}-work`), [...flags, '--layers', 'block,sequential'], `${tag} working tree`));
      }
      const rows = compareRuns(base, work);
      const { block, sequential } = worstRatios(rows);
      const adapters = [...new Set([...base, ...work].map((r) => r.adapter))].join('; ');
      const loads = [...base, ...work].map((r) => r.loadAtStart);
      const at = (r: { solver: string; d: number; batch: number }) => `${r.solver} d=${r.d} batch=${r.batch}`;
      sections.push(
        `Suite flags \`--quick --contenders none ${flags.join(' ')}\`; adapter: ${adapters}; load average at the runs' starts ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.\n\n` +
          `${comparisonTable(rows, git(root, 'rev-parse', '--short', baseCommit))}\n\n` +
          (block ? `Highest working/base median: ${block.ratio.median.toFixed(2)}× (${at(block)}). ` : '') +
          (sequential?.sequential ? `Highest sequential/block median: ${sequential.sequential.perBlock.median.toFixed(2)}× (${at(sequential)}).` : ''),
      );
    }
  } finally {
    removeTree();
  }
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const markdown =
    `\n## ${startStamp.slice(0, 16).replace('T', ' ')} UTC — side by side: working tree against ${git(root, 'rev-parse', '--short', baseCommit)} (alternating runs)\n\n` +
    `Machine: ${machineName()}. Base: ${describeCommit(root, baseCommit)}; working tree: ${workName}. Command: \`${command}\` ` +
    `(${options.rounds} rounds, base then working tree in each, ${minutes} min in all). Each run is \`npm run bench -- --quick --contenders none\` ` +
    `with the flags below (the working tree adds \`--layers block,sequential\`); a run's µs/f-eval is the median of its repeats, the table gives ` +
    `the median over the rounds, and each ratio as median (lowest–highest) of the rounds' pairs. Sequential rows: the same problem through ` +
    `\`sequential(linear(engine, { weight, bias }), add(Qd), tanh())\`, against the block of the same run.\n\n${sections.join('\n\n')}\n`;
  console.log(markdown);
  if (options.write) {
    appendFileSync(join(root, 'bench/RESULTS.md'), markdown);
    console.log('appended to bench/RESULTS.md');
  }
  console.log(`JSON and logs of the runs: ${dir}`);
}

runMain(main);
