/**
 * `vite-node bench/stage-tail.ts [-- --batch N] [--no-write]`: the solvers' steps inside a layer's
 * last stage kernel (ImplicitLayer.fusedStageTail: shaders/picard_norm_step.wgsl,
 * picard_conv_step.wgsl, anderson_norm_measure.wgsl, anderson_conv_measure.wgsl,
 * broyden_norm_step.wgsl, broyden_conv_step.wgsl) against the same layer with that path hidden
 * (the generic step kernels after it), side by side in one process: each round solves once each
 * way, alternating. Cells on 28 × 28 images of 4 channels: the MDEQ cell `conv2d, add(Qd),
 * groupNorm (2 groups), relu` and a residual cell of two convolutions `conv2d, relu, conv2d,
 * add(Qd), tanh`; a solve of each solver, eps = 0, a fixed maxDepth (the same work each way).
 * Batch (`--batch`, default 4): 4 gives the MDEQ cell 8 (row, group) workgroups, the most a CPU
 * adapter gives the norm's step. Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { Engine, Qd, add, anderson, broyden, conv2d, groupNorm, picard, relu, sequential, tanh, type ImplicitLayer, type Solver } from '../src/node';
import { adapterName, integerArgument, median, ratioCell, runMain, sideBySide, value } from './cli';
import { machineName } from './settings';

const ROUNDS = 15;
const MAX_DEPTH = 16;
const [SIDE, C] = [28, 4];
const BATCH = integerArgument('batch', 4);

async function main(): Promise<void> {
  const engine = await Engine.create();
  const size = SIDE * SIDE * C;
  const conv = (seed: number) =>
    conv2d(engine, {
      height: SIDE, width: SIDE, inChannels: C, outChannels: C, bias: new Float32Array(C),
      weight: Float32Array.from({ length: 9 * C * C }, (_, i) => (value(seed, i) * 0.2) / Math.sqrt(9 * C)),
    });
  const cells = [
    ['conv2d, add(Qd), groupNorm, relu', sequential(conv(1), add(Qd), groupNorm(engine, { groups: 2, gamma: new Float32Array(C).fill(1), beta: new Float32Array(C) }), relu())],
    ['conv2d, relu, conv2d, add(Qd), tanh', sequential(conv(2), relu(), conv(3), add(Qd), tanh())],
  ] as const;
  const q = engine.tensor(Float32Array.from({ length: BATCH * size }, (_, i) => 2 * value(5, i)), [BATCH, size]);
  const solvers: [string, Solver][] = [['picard', picard], ['anderson', anderson], ['broyden', broyden]];
  const rows: string[] = [];
  for (const [name, f] of cells) {
    // The same layer without the path: the solvers run the generic steps after its kernels.
    const generic: ImplicitLayer = {
      engine, featureSize: f.featureSize, params: f.params,
      prepare: (rows) => f.prepare(rows),
      encodeForward: (pass, io, rows) => f.encodeForward(pass, io, rows),
      encodeAdjoint: (pass, io, rows) => f.encodeAdjoint(pass, io, rows),
    };
    for (const [solverName, solver] of solvers) {
      const count = async (layer: ImplicitLayer): Promise<number> => {
        const before = engine.counters.dispatches;
        (await solver(layer, q, { eps: 0, maxDepth: MAX_DEPTH })).dispose();
        return engine.counters.dispatches - before;
      };
      const times = await sideBySide(ROUNDS, 2, () => count(f), () => count(generic));
      rows.push(`| ${name} | ${solverName} | ${await count(f)} / ${await count(generic)} | ${median(times.a).toFixed(1)} | ${median(times.b).toFixed(1)} | ${ratioCell(times)} |`);
    }
  }
  const table = [
    `| cell | solver | dispatches per solve (stage step / generic) | ms, stage step | ms, generic | stage step / generic, median (range) of ${ROUNDS} rounds |`,
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const section = `\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — the solvers' steps in a layer's last stage kernel against the generic steps\n\nMachine: ${machineName()}; adapter: ${adapterName(engine)}; Node, Dawn. Command: \`vite-node bench/stage-tail.ts\` (${SIDE} × ${SIDE} × ${C}, batch ${BATCH}, ${MAX_DEPTH} iterations, eps = 0, alternating solves in one process).\n\n${table}\n`;
  console.log(section);
  if (!process.argv.includes('--no-write')) appendFileSync(new URL('./RESULTS.md', import.meta.url), section);
  for (const [, f] of cells) f.dispose();
  q.dispose();
  engine.destroy();
}

runMain(main);
