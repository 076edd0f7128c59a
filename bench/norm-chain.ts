/**
 * `vite-node bench/norm-chain.ts [-- --batch N] [--no-write]`: an MDEQ cell, `sequential(conv2d, add(Qd),
 * groupNorm, relu())` on 28 × 28 images of 4 channels (2 groups), with the relu fused into the
 * norm's kernel (two kernels; the norm then takes the solvers' step: picard_norm_step.wgsl,
 * anderson_norm_measure.wgsl, broyden_norm_step.wgsl) against the same stages with the norm's
 * fusion hidden (three kernels, the relu on its own, the generic steps), side by side in one
 * process: each round runs each way once, alternating. Rows: a solve of each solver (eps = 0, a
 * fixed maxDepth: the same work each way) and a GDEQ step (the Broyden solve and its backward).
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { Engine, Qd, add, anderson, broyden, conv2d, gdeq, groupNorm, picard, relu, sequential, type Stage } from '../src/node';
import { adapterName, integerArgument, median, ratioCell, runMain, sideBySide, value } from './cli';
import { machineName } from './settings';

const ROUNDS = 15;
const MAX_DEPTH = 16;
// Batch (`--batch`, default 4): 4 gives 8 (row, group) workgroups, the most a CPU adapter gives
// the norm's step (SolveRun.fewGroups).
const [SIDE, C, GROUPS] = [28, 4, 2];
const BATCH = integerArgument('batch', 4);

async function main(): Promise<void> {
  const engine = await Engine.create();
  const size = SIDE * SIDE * C;
  const build = (fuseNorm: boolean) => {
    const norm = groupNorm(engine, { groups: GROUPS, gamma: new Float32Array(C).fill(1), beta: new Float32Array(C) });
    // The same stage without instantiateFused: the sequential runs the relu after it on its own kernel.
    const plain: Stage = {
      kind: norm.kind, params: norm.params, engine, readsQd: false,
      instantiate: (e, inputSize, index) => norm.instantiate(e, inputSize, index),
      dispose: () => norm.dispose(),
    };
    return sequential(
      conv2d(engine, {
        height: SIDE, width: SIDE, inChannels: C, outChannels: C, bias: new Float32Array(C),
        weight: Float32Array.from({ length: 9 * C * C }, (_, i) => (value(1, i) * 0.2) / Math.sqrt(9 * C)),
      }),
      add(Qd),
      fuseNorm ? norm : plain,
      relu(),
    );
  };
  const fused = build(true);
  const split = build(false);
  const q = engine.tensor(Float32Array.from({ length: BATCH * size }, (_, i) => 2 * value(5, i)), [BATCH, size]);
  const g = engine.tensor(Float32Array.from({ length: BATCH * size }, (_, i) => value(7, i)), [BATCH, size]);
  const options = { eps: 0, maxDepth: MAX_DEPTH };
  const solve = async (f: typeof fused) => (await broyden(f, q, options)).dispose();
  const step = async (f: typeof fused) => {
    const result = await gdeq(f, q, { ...options, solver: broyden });
    const grads = await result.backward(g);
    await grads['0.weight'].read();
    for (const tensor of Object.values(grads)) tensor.dispose();
    result.dispose();
  };
  const dispatches = async (run: () => Promise<void>): Promise<number> => {
    const before = engine.counters.dispatches;
    await run();
    return engine.counters.dispatches - before;
  };
  const rows: string[] = [];
  const solveWith = (solver: typeof broyden) => async (f: typeof fused) => (await solver(f, q, options)).dispose();
  const runs = [
    [`picard solve, ${MAX_DEPTH} iterations`, solveWith(picard)],
    [`anderson solve, ${MAX_DEPTH} iterations`, solveWith(anderson)],
    [`broyden solve, ${MAX_DEPTH} iterations`, solve],
    ['gdeq step (the broyden solve, backward)', step],
  ] as const;
  for (const [name, run] of runs) {
    const times = await sideBySide(ROUNDS, 2, () => run(fused), () => run(split));
    const counts = [await dispatches(() => run(fused)), await dispatches(() => run(split))];
    rows.push(`| ${name} | ${counts[0]} / ${counts[1]} | ${median(times.a).toFixed(1)} | ${median(times.b).toFixed(1)} | ${ratioCell(times)} |`);
  }
  const table = [
    `| row | dispatches (fused / relu alone) | ms, fused | ms, relu alone | fused / relu alone, median (range) of ${ROUNDS} rounds |`,
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const section = `\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — an MDEQ cell: groupNorm with the relu and the step in its kernel against the relu alone\n\nMachine: ${machineName()}; adapter: ${adapterName(engine)}; Node, Dawn. Command: \`vite-node bench/norm-chain.ts\` (\`sequential(conv2d, add(Qd), groupNorm, relu())\`, ${SIDE} × ${SIDE} × ${C}, ${GROUPS} groups, batch ${BATCH}, eps = 0, alternating in one process).\n\n${table}\n`;
  console.log(section);
  if (!process.argv.includes('--no-write')) appendFileSync(new URL('./RESULTS.md', import.meta.url), section);
  for (const owned of [fused, split, q, g]) owned.dispose();
  engine.destroy();
}

runMain(main);
