/**
 * GPU time of a layer's forward kernel(s) (the block's, or a sequential's stages) from timestamp
 * queries, where the device has the 'timestamp-query' feature (Engine.create() requests it whenever the adapter offers it).
 * Only the kernels are timed — no submit, readback or CPU encoding — so this is the figure the
 * GEMV bandwidth and matmul throughput of the forward pass are judged by.
 */
import type { Engine, ImplicitLayer, Tensor } from '../src';

// GPUBufferUsage / GPUMapMode values, spelled out so this file needs no WebGPU globals in Node.
const QUERY_RESOLVE = 0x0200;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;
const MAP_MODE_READ = 0x0001;

/** Whether timestamp queries can be used on this engine's device. */
export function hasTimestamps(engine: Engine): boolean {
  return engine.device.features.has('timestamp-query');
}

/**
 * Median GPU µs of one forward evaluation of `f` (all its kernels) over `Qd`'s rows, from
 * `evaluations` evaluations in one timestamped compute pass (after one untimed pass), or null
 * without timestamp queries. Fresh buffers, freed before returning.
 */
export async function forwardKernelMicros(engine: Engine, f: ImplicitLayer, Qd: Tensor, evaluations = 16, repeats = 3): Promise<number | null> {
  if (!hasTimestamps(engine)) return null;
  const { device } = engine;
  const rows = Qd.shape.length === 2 ? Qd.shape[0] : 1;
  await f.prepare(rows);
  const states = [engine.zeros(Qd.shape), engine.zeros(Qd.shape)];
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = device.createBuffer({ size: 16, usage: QUERY_RESOLVE | COPY_SRC });
  const staging = device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST });
  const once = async (): Promise<number> => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    for (let k = 0; k < evaluations; k++) {
      const [input, output] = k % 2 === 0 ? states : [states[1], states[0]];
      f.encodeForward(pass, { input: input.buffer, output: output.buffer, Qd: Qd.buffer, gate: engine.openGate() }, rows);
    }
    pass.end();
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, 16);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const [begin, end] = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return Number(end - begin) / 1000 / evaluations;
  };
  try {
    await once();
    const times: number[] = [];
    for (let k = 0; k < repeats; k++) times.push(await once());
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  } finally {
    for (const state of states) state.dispose();
    querySet.destroy();
    resolved.destroy();
    staging.destroy();
  }
}
