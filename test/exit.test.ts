// `process.exit()` the moment a call resolves must not crash the host. A call that left GPU work
// of its own in flight (a solver's look-ahead chunk, the recompute of uStar, a backward, a loss)
// used to end dawn.node's teardown with SIGSEGV most of the time. Each call runs in plain `node`
// children (test/exit/child.mjs, importing the built package by name) several times; every child
// must exit with code 0 and no signal.
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runNode, type ChildOutcome } from './helpers/child';

const CHILD = join(ROOT, 'test', 'exit', 'child.mjs');
/** Children per call: before the fix, one run of each of these 12 calls crashed most of them (3 runs of every call crashed at least one). */
const RUNS = 1;
/** Children at a time (the machine has 2 cores). */
const PARALLEL = 2;
const CHILD_TIMEOUT_MS = 60_000;

/** `<call>[:<solver>]`, as test/exit/child.mjs reads it. */
const CALLS = [
  'picard',
  'anderson',
  'broyden',
  'jfb:picard',
  'gdeq:broyden',
  'ift:picard',
  'backward:jfb',
  'backward:gdeq',
  'backward:ift',
  'mse',
  'softmaxCrossEntropy',
  'step',
];

beforeAll(ensureBuilt, 300_000);

it('exits with code 0 and no signal right after each solver, backprop and loss call', async () => {
  const queue = CALLS.flatMap((call) => Array.from({ length: RUNS }, () => call));
  const failures: string[] = [];
  const worker = async (): Promise<void> => {
    for (let call = queue.shift(); call !== undefined; call = queue.shift()) {
      const outcome: ChildOutcome = await runNode([CHILD, call], CHILD_TIMEOUT_MS);
      if (outcome.code !== 0 || outcome.signal !== null || outcome.timedOut) {
        failures.push(`${call}: exit ${outcome.code} signal ${outcome.signal}${outcome.timedOut ? ' (timed out)' : ''} ${outcome.stderr.slice(-400)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  expect(failures).toEqual([]);
}, 600_000);
