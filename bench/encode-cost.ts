/**
 * `npm run bench:encode [-- --no-write]`: the CPU cost of encoding one dispatch, the library's way
 * against raw Dawn in the same process. The library's row encodes f of a fused
 * `sequential(linear, add(Qd), tanh())` (the tanh block: one dispatch) through
 * `f.encodeForward`, bind group and uniforms found in its caches; the raw row calls setPipeline +
 * setBindGroup + dispatchWorkgroups on objects built beforehand. Each is the best of 7 passes of
 * 20,000 encodes (nothing is submitted). Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { Engine, implicitBlock } from '../src/node';
import { adapterName, runMain } from './cli';
import { machineName } from './settings';

const ENCODES = 20_000;
const PASSES = 7;

/** Best µs per call of `body` over PASSES passes of ENCODES calls into one compute pass. */
function microsPerEncode(engine: Engine, body: (pass: GPUComputePassEncoder) => void): number {
  let best = Infinity;
  for (let p = 0; p < PASSES; p++) {
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const start = performance.now();
    for (let i = 0; i < ENCODES; i++) body(pass);
    best = Math.min(best, ((performance.now() - start) * 1000) / ENCODES);
    pass.end();
    encoder.finish();
  }
  return best;
}

async function main(): Promise<void> {
  const engine = await Engine.create();
  const rows: [string, number][] = [];
  for (const [d, batch] of [[64, 1], [256, 64]] as const) {
    const f = implicitBlock(engine, { weight: new Float32Array(d * d), bias: new Float32Array(d) });
    await f.prepare(batch);
    const [u, y, q] = [engine.zeros([batch, d]), engine.zeros([batch, d]), engine.zeros([batch, d])];
    const io = { input: u.buffer, output: y.buffer, Qd: q.buffer, gate: engine.openGate() };
    rows.push([`library: tanh block f.encodeForward, d = ${d}, batch ${batch}`, microsPerEncode(engine, (pass) => f.encodeForward(pass, io, batch))]);
    for (const t of [u, y, q]) t.dispose();
    f.dispose();
  }
  const buffer = engine.zeros([64]);
  const module = engine.device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(64) fn main() { x[0] = 1.0; }' });
  const pipeline = engine.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const group = engine.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buffer.buffer } }] });
  const raw = microsPerEncode(engine, (pass) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(1, 1, 1);
  });
  const table = [
    '| encode | µs per dispatch | against raw Dawn |',
    '|---|---|---|',
    ...rows.map(([label, us]) => `| ${label} | ${us.toFixed(2)} | ${(us / raw).toFixed(2)}× |`),
    `| raw Dawn: setPipeline + setBindGroup + dispatchWorkgroups, prebuilt | ${raw.toFixed(2)} | 1× |`,
  ].join('\n');
  const section = `\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — encoding cost per dispatch\n\nMachine: ${machineName()}; adapter: ${adapterName(engine)}; Node, Dawn. Command: \`npm run bench:encode\` (best of ${PASSES} passes of ${ENCODES.toLocaleString('en')} encodes, nothing submitted).\n\n${table}\n`;
  console.log(section);
  if (!process.argv.includes('--no-write')) appendFileSync(new URL('./RESULTS.md', import.meta.url), section);
  buffer.dispose();
  engine.destroy();
}

runMain(main);
