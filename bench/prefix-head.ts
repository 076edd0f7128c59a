/**
 * `vite-node bench/prefix-head.ts [-- --no-write]`: Broyden on a layer of several kernels whose
 * last is a fused linear and whose first is a fused linear, `sequential(linear(d → d), relu(),
 * linear(d → d), add(Qd), tanh())`, or a layerNorm or a relu before that chain, with that first
 * kernel as the advance's (shaders/broyden_prefix_head.wgsl, broyden_prefix_norm_head.wgsl,
 * broyden_advance.wgsl's head_main: k + 1
 * dispatches per iteration) against the same solve with the advance kernel before the prefix
 * (k + 2: the layer's `FusedPrefix.head` hidden), side by side in one process: each round solves
 * once each way, alternating, and the table gives the median of the rounds' ms per solve and the
 * ratio. eps = 0 and a fixed maxDepth (the same work each way). Prints a table and appends it to
 * bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { Engine, add, broyden, layerNorm, linear, relu, sequential, tanh } from '../src/node';
import type { FusedPicardPath, ImplicitLayer } from '../src/layers/layer';
import { adapterName, median, ratioCell, runMain, sideBySide, value } from './cli';
import { machineName } from './settings';

const ROUNDS = 21;
const MAX_DEPTH = 32;
/**
 * [d, batch, the prefix's first kernel]: a fused linear (broyden_prefix_head.wgsl), a layerNorm
 * (broyden_prefix_norm_head.wgsl) or a relu (broyden_advance.wgsl's head_main) before the chain.
 */
const CASES = [
  [64, 1, 'linear'], [256, 1, 'linear'], [64, 16, 'linear'],
  [64, 1, 'layerNorm'], [256, 1, 'layerNorm'], [64, 16, 'layerNorm'],
  [64, 1, 'relu'], [64, 16, 'relu'],
] as const;

async function main(): Promise<void> {
  const engine = await Engine.create();
  const rows: string[] = [];
  for (const [d, batch, first] of CASES) {
    const layer = (seed: number) =>
      linear(engine, {
        weight: Float32Array.from({ length: d * d }, (_, i) => (value(seed, i) * 0.8) / Math.sqrt(d)),
        bias: Float32Array.from({ length: d }, (_, i) => value(seed + 1, i) * 0.1),
      });
    const norm = () => layerNorm(engine, { gamma: new Float32Array(d).fill(1), beta: new Float32Array(d) });
    const chain = [layer(1), relu(), layer(3), add(), tanh()];
    const f = first === 'linear' ? sequential(...chain) : sequential(first === 'relu' ? relu() : norm(), ...chain);
    // The same layer without its head: the solver keeps the advance kernel.
    const headless: ImplicitLayer = {
      engine,
      featureSize: f.featureSize,
      params: f.params,
      prepare: (rows) => f.prepare(rows),
      encodeForward: (pass, io, rows) => f.encodeForward(pass, io, rows),
      encodeAdjoint: (pass, io, rows) => f.encodeAdjoint(pass, io, rows),
      fusedPicard: (rows: number): FusedPicardPath | null => {
        const path = f.fusedPicard(rows);
        return path?.prefix ? { ...path, prefix: { ...path.prefix, head: undefined } } : path;
      },
    };
    const q = engine.tensor(Float32Array.from({ length: batch * d }, (_, i) => value(5, i)), [batch, d]);
    const options = { eps: 0, maxDepth: MAX_DEPTH };
    const count = async (layerOf: ImplicitLayer): Promise<number> => {
      const before = engine.counters.dispatches;
      (await broyden(layerOf, q, options)).dispose();
      return engine.counters.dispatches - before;
    };
    const times = await sideBySide(ROUNDS, 3, () => count(f), () => count(headless));
    rows.push(
      `| ${first} | ${d} | ${batch} | ${await count(f)} / ${await count(headless)} | ${median(times.a).toFixed(2)} | ${median(times.b).toFixed(2)} | ${ratioCell(times)} |`,
    );
    q.dispose();
    f.dispose();
  }
  const table = [
    `| first kernel | d | batch | dispatches per solve (head / advance kernel) | ms per solve, head | ms, advance kernel | head / advance kernel, median (range) of ${ROUNDS} rounds |`,
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const section = `\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — Broyden on a prefix layer: the head against the advance kernel\n\nMachine: ${machineName()}; adapter: ${adapterName(engine)}; Node, Dawn. Command: \`vite-node bench/prefix-head.ts\` (\`sequential(linear, relu(), linear, add(Qd), tanh())\`, and that with a layerNorm or a relu first, eps = 0, maxDepth = ${MAX_DEPTH}, alternating solves in one process).\n\n${table}\n`;
  console.log(section);
  if (!process.argv.includes('--no-write')) appendFileSync(new URL('./RESULTS.md', import.meta.url), section);
  engine.destroy();
}

runMain(main);
