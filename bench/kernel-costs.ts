/**
 * `vite-node bench/kernel-costs.ts`: what single dispatches cost on this adapter — the evidence
 * behind the solvers' SwiftShader choices (docs/swiftshader-costs.md). Each line is the median
 * µs per dispatch of 20–200 identical dispatches in one compute pass (CPU wall time to
 * onSubmittedWorkDone), for: an empty 256-thread kernel, one barrier at 64 and 256 threads, a
 * tree reduction at 64 and 256 threads, the library's workgroup_sum at both (portable, and with
 * subgroups where the device has them), 16 barriers with no workgroup memory, a 64-thread kernel
 * that declares 64, 1024 or 4096 floats of workgroup memory and touches one each, the same 4096
 * in a branch never taken, a one-workgroup 256 × 256 matrix-vector product, and a submit +
 * 64-byte readback round trip. Then, in ms: long work from its submit to its map, the map asked
 * for at the submit (Dawn in Node then polls on the main thread throughout) or after the main
 * thread slept through 60% of that time (src/solvers/pace.ts).
 */
import { readFileSync } from 'node:fs';
import { Engine } from '../src/node';
import { runMain } from './cli';

// GPUBufferUsage / GPUMapMode values, spelled out so this file needs no WebGPU globals in Node.
const STORAGE = 0x0080;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;

async function main(): Promise<void> {
  const engine = await Engine.create();
  const { device } = engine;
  const data = device.createBuffer({ size: 65536 * 4 * 2, usage: STORAGE });
  const out = device.createBuffer({ size: 4096 * 4, usage: STORAGE });

  const pipeline = (threads: number, body: string, declarations = '', enable = ''): GPUComputePipeline => {
    const code = `${enable}
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${declarations}
@compute @workgroup_size(${threads}) fn main(@builtin(local_invocation_index) lid: u32) {
  out[lid] = data[lid]; // keeps both bindings in the layout
  ${body}
}`;
    return device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  };

  const time = async (name: string, pipe: GPUComputePipeline, count: number): Promise<void> => {
    const group = device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: data } }, { binding: 1, resource: { buffer: out } }],
    });
    const runs: number[] = [];
    for (let rep = 0; rep < 4; rep++) {
      const start = performance.now();
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, group);
      for (let i = 0; i < count; i++) pass.dispatchWorkgroups(1);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      if (rep > 0) runs.push(((performance.now() - start) * 1000) / count); // the first compiles
    }
    runs.sort((a, b) => a - b);
    console.log(`${name.padEnd(52)} ${runs[1].toFixed(0).padStart(7)} µs`);
  };

  const scratch = (n: number) => `var<workgroup> scratch: array<f32, ${n}>;`;
  const tree = (n: number) =>
    `scratch[lid] = f32(lid); workgroupBarrier();
  for (var s = ${n / 2}u; s > 0u; s >>= 1u) { if (lid < s) { scratch[lid] += scratch[lid + s]; } workgroupBarrier(); }
  if (lid == 0u) { out[0] = scratch[0]; }`;
  const matvec = `shared_u[lid] = data[65536u + lid]; workgroupBarrier();
  var acc = 0.0;
  for (var k = 0u; k < 256u; k++) { acc += shared_u[k] * data[k * 256u + lid]; }
  out[lid] = acc;`;

  // The library's workgroup_sum, portable and with subgroups (a vec4 per thread, as the solvers sum).
  const piece = (file: string): string => readFileSync(new URL(`../shaders/lib/${file}`, import.meta.url), 'utf8');
  const librarySum = (n: number, file: string): string => `const REDUCE_SIZE: u32 = ${n}u;\n${piece(file)}`;
  const sumBody = 'let total = workgroup_sum(vec4<f32>(data[lid]), lid); if (lid == 0u) { out[0] = total.x; }';

  console.log(`adapter: ${engine.device.adapterInfo?.description ?? 'unknown'}\nµs per dispatch (one workgroup):`);
  await time('no barrier, 256 threads', pipeline(256, ''), 200);
  await time('1 workgroupBarrier, 64 threads', pipeline(64, 'workgroupBarrier();'), 200);
  await time('1 workgroupBarrier, 256 threads', pipeline(256, 'workgroupBarrier();'), 200);
  await time('tree reduction, 64 threads (7 barriers)', pipeline(64, tree(64), scratch(64)), 100);
  await time('tree reduction, 256 threads (9 barriers)', pipeline(256, tree(256), scratch(256)), 100);
  await time('workgroup_sum (lib/reduce.wgsl), 64 threads', pipeline(64, sumBody, librarySum(64, 'reduce.wgsl')), 100);
  await time('workgroup_sum (lib/reduce.wgsl), 256 threads', pipeline(256, sumBody, librarySum(256, 'reduce.wgsl')), 100);
  if (device.features.has('subgroups')) {
    const enable = 'enable subgroups;';
    await time('workgroup_sum (reduce_subgroups.wgsl), 64 threads', pipeline(64, sumBody, librarySum(64, 'reduce_subgroups.wgsl'), enable), 100);
    await time('workgroup_sum (reduce_subgroups.wgsl), 256 threads', pipeline(256, sumBody, librarySum(256, 'reduce_subgroups.wgsl'), enable), 100);
  }
  // Barriers alone, then workgroup memory alone: what a declared workgroup array costs whether or
  // not the kernel uses it (Dawn zero-fills every array the entry point references, each dispatch).
  const barriers = 'var x = data[lid]; for (var i = 0u; i < 16u; i++) { workgroupBarrier(); x += 1.0; } out[lid] = x;';
  await time('16 workgroupBarriers, 64 threads, no workgroup memory', pipeline(64, barriers), 100);
  const touch = 'scratch[lid % 64u] = data[lid]; out[lid] = scratch[(lid + 1u) % 64u];';
  for (const floats of [64, 1024, 4096]) {
    await time(`workgroup array of ${floats} floats, 64 threads`, pipeline(64, touch, scratch(floats)), 100);
  }
  await time('workgroup array of 4096 floats, in a branch never taken', pipeline(64, `if (data[0] > 1e30) { ${touch} }`, scratch(4096)), 100);
  await time('256 × 256 matrix-vector product, 256 threads', pipeline(256, matvec, 'var<workgroup> shared_u: array<f32, 256>;'), 20);

  const source = device.createBuffer({ size: 64, usage: STORAGE | COPY_SRC });
  const staging = device.createBuffer({ size: 64, usage: MAP_READ | COPY_DST });
  const start = performance.now();
  for (let i = 0; i < 50; i++) {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(source, 0, staging, 0, 64);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(1);
    staging.unmap();
  }
  console.log(`${'submit + 64-byte readback round trip'.padEnd(52)} ${(((performance.now() - start) * 1000) / 50).toFixed(0).padStart(7)} µs`);

  // Waiting: the same long work (64 threads × 1024 workgroups × 4 dispatches of a 2,000-step loop),
  // its 4-byte map asked for at the submit, or after the main thread slept through most of it.
  const long = pipeline(64, 'var a = data[lid]; for (var i = 0u; i < 2000u; i++) { a = a * 0.999 + 0.001; } out[lid] = a;');
  const longGroup = device.createBindGroup({ layout: long.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: data } }, { binding: 1, resource: { buffer: out } }] });
  const wait = async (sleepMs: number): Promise<number> => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(long);
    pass.setBindGroup(0, longGroup);
    for (let i = 0; i < 4; i++) pass.dispatchWorkgroups(1024);
    pass.end();
    encoder.copyBufferToBuffer(source, 0, staging, 0, 4); // after the dispatches in queue order
    const began = performance.now();
    device.queue.submit([encoder.finish()]);
    if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
    await staging.mapAsync(1, 0, 4);
    staging.unmap();
    return performance.now() - began;
  };
  await wait(0); // compiles
  const polled: number[] = [];
  for (let i = 0; i < 3; i++) polled.push(await wait(0));
  const median = (ms: number[]): number => [...ms].sort((a, b) => a - b)[ms.length >> 1];
  const busy = median(polled);
  // Sleep through 60% of the polled time: the GPU's own time is shorter than that when polling slows it.
  const slept: number[] = [];
  for (let i = 0; i < 3; i++) slept.push(await wait(0.6 * busy));
  console.log(`long work, submit to map, ms (median of 3):\n${'  map asked for at the submit'.padEnd(52)} ${busy.toFixed(0).padStart(7)}\n${`  after sleeping ${(0.6 * busy).toFixed(0)} ms`.padEnd(52)} ${median(slept).toFixed(0).padStart(7)}`);
  engine.destroy();
}

runMain(main);
