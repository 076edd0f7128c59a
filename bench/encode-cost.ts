/**
 * `npm run bench:encode [-- --no-write] [--first-submit]` (`--first-submit`: only the table of CPU time
 * before a solve's first submit, printed, not written): the CPU cost of encoding one dispatch, the library's way
 * against raw Dawn in the same process. The library's row encodes f of a fused
 * `sequential(linear, add(Qd), tanh())` (the tanh block: one dispatch) through
 * `f.encodeForward`, bind group and uniforms found in its caches; the raw row calls setPipeline +
 * setBindGroup + dispatchWorkgroups on objects built beforehand. Each is the best of 7 passes of
 * 20,000 encodes (nothing is submitted). Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { Engine, anderson, broyden, implicitBlock, picard, type Solver, type SolverOptions } from '../src/node';
import { Kernel } from '../src/gpu/kernel';
import { adapterName, runMain } from './cli';
import { machineName } from './settings';

const ENCODES = 20_000;
const PASSES = 7;
/** Timed solves per solver row (see solverRows). */
const SOLVE_PASSES = 7;


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

/**
 * The solvers' iterations, d = 64, batch 32 (past the whole-iteration Picard kernel): the library's
 * encode µs per dispatch over a solve of 2,048 iterations in chunks of 512 (engine.counters;
 * `overlap: false`, so no chunk is encoded while SwiftShader's CPU threads run the one before),
 * against replaying the same dispatches — the pipelines and bind groups the solve used, recorded
 * from Kernel.dispatch — with raw Dawn calls into an unsubmitted pass. Best of SOLVE_PASSES solves
 * and of 3 replays: a chunk's `beginComputePass` now and then stalls 45–80 ms in glibc's
 * consolidation of what a collection of Dawn's polling garbage freed (docs/swiftshader-costs.md);
 * the solves' pace makes that rare, not impossible.
 */
async function solverRows(engine: Engine): Promise<[string, number, number][]> {
  const d = 64;
  const batch = 32;
  const weight = Float32Array.from({ length: d * d }, (_, i) => (((i * 7919) % 1000) / 1000 - 0.5) * 0.1);
  const f = implicitBlock(engine, { weight, bias: new Float32Array(d) });
  const q = engine.tensor(Float32Array.from({ length: batch * d }, (_, i) => Math.sin(i)), [batch, d]);
  const rows: [string, number, number][] = [];
  const cases: [string, Solver, SolverOptions][] = [
    ['solver: picard iteration (dense step, 1 dispatch)', picard, {}],
    ['solver: anderson iteration (dense, 2 dispatches)', anderson, {}],
    ['solver: picard iteration, fused: false (the layer + the step)', picard, { fused: false }],
  ];
  const dispatch = Kernel.prototype.dispatch;
  for (const [label, solver, options] of cases) {
    const solve = () => solver(f, q, { ...options, eps: 0, maxDepth: 2048, checkEvery: 512, overlap: false });
    (await solve()).dispose(); // compiles
    let library = Infinity;
    for (let p = 0; p < SOLVE_PASSES; p++) {
      const before = engine.counters;
      (await solve()).dispose();
      const after = engine.counters;
      library = Math.min(library, (after.encodeMicros - before.encodeMicros) / (after.dispatches - before.dispatches));
    }
    const recorded: [GPUComputePipeline, GPUBindGroup, number, number, number][] = [];
    Kernel.prototype.dispatch = function (this: Kernel, pass, group, x, y = 1, z = 1) {
      recorded.push([this.pipeline, group, x, y, z]);
      dispatch.call(this, pass, group, x, y, z);
    };
    try {
      (await solve()).dispose();
    } finally {
      Kernel.prototype.dispatch = dispatch;
    }
    let raw = Infinity;
    for (let p = 0; p < 3; p++) {
      const encoder = engine.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      const start = performance.now();
      for (const [pipeline, group, x, y, z] of recorded) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(x, y, z);
      }
      raw = Math.min(raw, ((performance.now() - start) * 1000) / recorded.length);
      pass.end();
      encoder.finish();
    }
    rows.push([label, library, raw]);
  }
  q.dispose();
  f.dispose();
  return rows;
}

/**
 * Median CPU µs from calling each solver to its first queue submit, kernels already compiled and
 * the solve's program cached (its configuration solved before); then, for scale, under the same
 * conditions (right after such a solve) and to the same point (the submit call), raw Dawn
 * encoding a start (createCommandEncoder, clearBuffer, finish), with and without the validation
 * error scope a checked submit pushes first.
 */
async function beforeFirstSubmit(engine: Engine): Promise<[string, number][]> {
  const d = 64;
  const f = implicitBlock(engine, { weight: new Float32Array(d * d), bias: new Float32Array(d) });
  const q = engine.tensor(new Float32Array(d), [d]);
  const rows: [string, number][] = [];
  const submit = engine.queueSubmit.bind(engine);
  let first = NaN;
  engine.queueSubmit = (buffers) => {
    if (Number.isNaN(first)) first = performance.now();
    submit(buffers);
  };
  const median = (times: number[]): number => times.sort((a, b) => a - b)[times.length >> 1];
  const state = engine.zeros([d]);
  const raw = (scoped: boolean): number => {
    const start = performance.now();
    if (scoped) engine.device.pushErrorScope('validation');
    const encoder = engine.device.createCommandEncoder();
    encoder.clearBuffer(state.buffer);
    const commands = encoder.finish();
    const end = performance.now();
    engine.device.queue.submit([commands]);
    if (scoped) void engine.device.popErrorScope();
    return 1000 * (end - start);
  };
  const floor: number[][] = [[], []];
  for (const [name, solver] of [['picard', picard], ['anderson', anderson], ['broyden', broyden]] as const) {
    const times: number[] = [];
    for (let i = 0; i < 41; i++) {
      first = NaN;
      const start = performance.now();
      const pending = solver(f, q, { maxDepth: 8 });
      (await pending).dispose();
      times.push(1000 * (first - start));
      floor[i % 2].push(raw(i % 2 === 0));
    }
    rows.push([name, median(times)]);
  }
  rows.push(['raw Dawn after such a solve: pushErrorScope + createCommandEncoder + clearBuffer + finish, to the submit call', median(floor[0])]);
  rows.push(['raw Dawn after such a solve: the same without the error scope', median(floor[1])]);
  engine.queueSubmit = submit;
  state.dispose();
  q.dispose();
  f.dispose();
  return rows;
}

async function main(): Promise<void> {
  const engine = await Engine.create();
  if (process.argv.includes('--first-submit')) {
    // Only the first-submit table (quick to iterate on); never written to RESULTS.md.
    const firstSubmit = await beforeFirstSubmit(engine);
    console.log(['| CPU from the solver call to its first submit (kernels compiled; median of 41) | µs |', '|---|---|', ...firstSubmit.map(([label, us]) => `| ${label} | ${us.toFixed(0)} |`)].join('\n'));
    engine.destroy();
    return;
  }
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
  const solvers = await solverRows(engine);
  const firstSubmit = await beforeFirstSubmit(engine);
  const table = [
    '| encode | µs per dispatch | against raw Dawn |',
    '|---|---|---|',
    ...rows.map(([label, us]) => `| ${label} | ${us.toFixed(2)} | ${(us / raw).toFixed(2)}× |`),
    `| raw Dawn: setPipeline + setBindGroup + dispatchWorkgroups, prebuilt | ${raw.toFixed(2)} | 1× |`,
    '',
    '| a solve, encoded | library µs per dispatch | raw Dawn replay of the same dispatches, µs | library against raw |',
    '|---|---|---|---|',
    ...solvers.map(([label, us, replay]) => `| ${label} | ${us.toFixed(2)} | ${replay.toFixed(2)} | ${(us / replay).toFixed(2)}× |`),
    '',
    '| CPU from the solver call to its first submit (kernels compiled; median of 41) | µs |',
    '|---|---|',
    ...firstSubmit.map(([label, us]) => `| ${label} | ${us.toFixed(0)} |`),
  ].join('\n');
  const section = `\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — encoding cost per dispatch\n\nMachine: ${machineName()}; adapter: ${adapterName(engine)}; Node, Dawn. Command: \`npm run bench:encode\` (best of ${PASSES} passes of ${ENCODES.toLocaleString('en')} encodes, nothing submitted).\n\n${table}\n`;
  console.log(section);
  if (!process.argv.includes('--no-write')) appendFileSync(new URL('./RESULTS.md', import.meta.url), section);
  buffer.dispose();
  engine.destroy();
}

runMain(main);
