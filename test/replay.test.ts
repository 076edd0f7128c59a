// Recorded evaluations (src/solvers/replay.ts): inside a solve, a library layer's encodeForward
// runs once per buffer set and chunk and is replayed after; a layer that encodes on its own is
// called every iteration. Both give the same results as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anderson, broyden, implicitBlock, picard, type Engine, type ForwardIO, type ImplicitLayer, type Solver } from '../src';
import type { BufferRegion } from '../src/gpu/kernel';
import { createTestEngine, randomArray, rng } from './helpers/engine';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const d = 16;
const batch = 3;
const random = rng(8);

/** A layer that delegates to `inner` and counts its encodeForward calls. */
function counting(inner: ImplicitLayer): ImplicitLayer & { calls: number } {
  const layer = {
    calls: 0,
    engine: inner.engine,
    featureSize: inner.featureSize,
    params: inner.params,
    prepare: (rows: number) => inner.prepare(rows),
    encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, rows: number) {
      layer.calls++;
      inner.encodeForward(pass, io, rows);
    },
    encodeAdjoint: inner.encodeAdjoint.bind(inner),
  };
  return layer;
}

const region = (r: BufferRegion): GPUBufferBinding => ('buffer' in r ? r : { buffer: r });

/** f(u) = 0.5·u + Qd by a pipeline of its own (raw Dawn calls, not the library's kernels). */
function rawLayer(): ImplicitLayer & { calls: number } {
  const module = engine.device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read> gate: array<u32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> qd: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (gate[0] != 0u || id.x >= arrayLength(&y)) { return; }
  y[id.x] = 0.5 * u[id.x] + qd[id.x];
}`,
  });
  const pipeline = engine.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const layer = {
    calls: 0,
    engine,
    featureSize: d,
    params: {},
    prepare: async () => undefined,
    encodeForward(pass: GPUComputePassEncoder, io: ForwardIO, rows: number) {
      layer.calls++;
      const group = engine.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ buffer: io.gate }, region(io.input), region(io.Qd), region(io.output)].map((resource, binding) => ({ binding, resource })),
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(Math.ceil((rows * d) / 64));
    },
    encodeAdjoint() {
      throw new Error('not used');
    },
  };
  return layer;
}

describe('recorded evaluations', () => {
  const solvers: [string, Solver][] = [['picard', picard], ['anderson', anderson], ['broyden', broyden]];

  it.each(solvers)("%s: a library layer's encodeForward runs once per buffer set and chunk; the result is the layer's", async (_name, solver) => {
    const block = implicitBlock(engine, { weight: Float32Array.from(randomArray(random, d * d, 0.2)), bias: Float32Array.from(randomArray(random, d, 0.1)) });
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * d, 1)), [batch, d]);
    const f = counting(block);
    const options = { eps: 0, maxDepth: 96, checkEvery: 32, fused: false } as const;
    const counted = await solver(f, q, options);
    const direct = await solver(block, q, options);
    expect(Array.from(await counted.uStar.read())).toEqual(Array.from(await direct.uStar.read()));
    expect(counted.tnstep).toBe(direct.tnstep);
    // 3 chunks × at most 6 buffer sets, and the start's evaluations: far fewer than 96 iterations.
    expect(f.calls).toBeGreaterThan(0);
    expect(f.calls).toBeLessThanOrEqual(3 * 6 + 2);
    for (const r of [counted, direct]) r.dispose();
    q.dispose();
    block.dispose();
  });

  it('a layer that encodes its own pipeline is called every iteration, and solved right', async () => {
    const f = rawLayer();
    const qd = Float32Array.from(randomArray(random, batch * d, 1));
    const q = engine.tensor(qd, [batch, d]);
    const r = await picard(f, q, { eps: 1e-6, maxDepth: 60, checkEvery: 8, fused: false });
    expect(r.stats.converged).toBe(true);
    const u = await r.uStar.read();
    u.forEach((v, i) => expect(v).toBeCloseTo(2 * qd[i], 4));
    // Every encoded iteration calls it (some past convergence, skipped on the GPU).
    expect(f.calls).toBeGreaterThanOrEqual(r.stats.nstep);
    r.dispose();
    q.dispose();
  });
});
