/**
 * A layer's evaluation recorded once and replayed: the solvers call `encodeForward` with the same
 * few buffer sets every iteration, and a call always encodes the same pipelines, bind groups and
 * dispatches for the same buffers, so the scheduler records the pass calls of each set once per
 * chunk (into a stand-in pass) and replays them into the real pass — setPipeline, setBindGroup
 * and dispatch on prebuilt objects, with none of the layer's lookups. A recording is used only
 * when every dispatch it holds went through the library's kernels (so the layer is the library's,
 * or made with `defineLayer`): a layer that encodes on its own, or uses a pass method the stand-in
 * does not offer, is called every time as before. Recordings last one chunk: uniform buffers the
 * engine's caches evict between chunks are then never replayed.
 */
import type { Engine } from '../engine';

/** One recorded pass call. */
type Call =
  | { kind: 'pipeline'; pipeline: GPUComputePipeline }
  | { kind: 'group'; index: number; group: GPUBindGroup | null; offsets: readonly number[] }
  | { kind: 'dispatch'; x: number; y: number; z: number }
  | { kind: 'indirect'; buffer: GPUBuffer; offset: number };

/** The pass methods a layer may call while recorded; any other is an error that ends the recording. */
class RecordingPass {
  readonly calls: Call[] = [];
  dispatches = 0;
  label = 'anchorax recording';

  setPipeline(pipeline: GPUComputePipeline): void {
    this.calls.push({ kind: 'pipeline', pipeline });
  }

  setBindGroup(index: number, group: GPUBindGroup | null, offsets?: Iterable<number> | Uint32Array, start?: number, length?: number): void {
    let list: number[] = [];
    if (offsets instanceof Uint32Array) list = Array.from(offsets.subarray(start ?? 0, (start ?? 0) + (length ?? offsets.length)));
    else if (offsets) list = Array.from(offsets);
    this.calls.push({ kind: 'group', index, group, offsets: list });
  }

  dispatchWorkgroups(x: number, y = 1, z = 1): void {
    this.calls.push({ kind: 'dispatch', x, y, z });
    this.dispatches++;
  }

  dispatchWorkgroupsIndirect(buffer: GPUBuffer, offset: number): void {
    this.calls.push({ kind: 'indirect', buffer, offset });
    this.dispatches++;
  }

  pushDebugGroup(): void {}
  popDebugGroup(): void {}
  insertDebugMarker(): void {}
}

/** The recorded calls of one evaluation, or null when the layer is called directly. */
export type Recording = { readonly calls: readonly Call[]; readonly dispatches: number } | null;

/**
 * Records `encode` (one evaluation). The dispatches it counted are taken back out of the engine's
 * counters (nothing was encoded yet); null when it cannot be replayed.
 */
export function record(engine: Engine, encode: (pass: GPUComputePassEncoder) => void): Recording {
  const recorder = new RecordingPass();
  const before = engine.tally.dispatches;
  try {
    encode(recorder as unknown as GPUComputePassEncoder);
  } catch {
    // A pass method the stand-in lacks (or a layer that fails only when recorded): call it directly.
    engine.tally.dispatches = before;
    return null;
  }
  const counted = engine.tally.dispatches - before;
  engine.tally.dispatches = before;
  return counted === recorder.dispatches ? { calls: recorder.calls, dispatches: recorder.dispatches } : null;
}

/** Encodes a recording into `pass`, counted as its dispatches. */
export function replay(engine: Engine, pass: GPUComputePassEncoder, recording: NonNullable<Recording>): void {
  for (const call of recording.calls) {
    switch (call.kind) {
      case 'pipeline':
        pass.setPipeline(call.pipeline);
        break;
      case 'group':
        pass.setBindGroup(call.index, call.group, call.offsets);
        break;
      case 'dispatch':
        pass.dispatchWorkgroups(call.x, call.y, call.z);
        break;
      case 'indirect':
        pass.dispatchWorkgroupsIndirect(call.buffer, call.offset);
        break;
    }
  }
  engine.tally.dispatches += recording.dispatches;
}
