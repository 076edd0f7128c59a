/**
 * Buffer pool: solvers take their scratch buffers here and give them back after a solve, so a
 * training loop of identical solves allocates nothing after the first step (and bind groups,
 * cached by buffer identity, are found again).
 *
 * Bounded: the free buffers kept for reuse hold at most max(MIN_FREE_BYTES, the most bytes ever
 * in use at once) and number at most max(MIN_FREE_BUFFERS, the most buffers ever in use at once);
 * beyond that the longest-unused free buffers are handed to `retire` (which destroys them). A
 * steady loop never retires (what it frees, it takes again), while a workload of ever-new sizes
 * stays within about twice its peak.
 */
import { BufferUsage } from './flags';
import { bufferId } from './kernel';

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** Free bytes the pool always may keep, whatever the peak in use. */
export const MIN_FREE_BYTES = 16 * 2 ** 20;
/** Free buffers the pool always may keep, whatever the peak in use. */
export const MIN_FREE_BUFFERS = 256;

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  /** Every free buffer, longest-unused first (Set iteration follows insertion). */
  private readonly idle = new Set<GPUBuffer>();
  /** Bytes currently allocated by this pool (in use or free). */
  allocatedBytes = 0;
  /** Highest value `allocatedBytes` reached. */
  peakBytes = 0;
  /** Bytes of the free buffers. */
  freeBytes = 0;
  private inUseBytes = 0;
  private inUseBuffers = 0;
  private peakInUseBytes = 0;
  private peakInUseBuffers = 0;

  /** @param retire takes a buffer the pool drops (to destroy it once no queued work can use it). */
  constructor(
    private readonly device: GPUDevice,
    private readonly retire: (buffer: GPUBuffer) => void = (buffer) => buffer.destroy(),
    private readonly tally: { buffersCreated: number } = { buffersCreated: 0 },
  ) {}

  /** Number of free buffers kept for reuse. */
  get freeBuffers(): number {
    return this.idle.size;
  }

  acquire(size: number, usage: number = STORAGE_USAGE, label = 'anchorax scratch'): GPUBuffer {
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const reused = this.takeFree(`${usage}:${bytes}`);
    let buffer: GPUBuffer;
    if (reused) {
      this.idle.delete(reused);
      this.freeBytes -= bytes;
      buffer = reused;
    } else {
      buffer = this.device.createBuffer({ label, size: bytes, usage });
      this.tally.buffersCreated++;
      this.allocatedBytes += bytes;
      this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    }
    this.inUseBytes += bytes;
    this.inUseBuffers++;
    this.peakInUseBytes = Math.max(this.peakInUseBytes, this.inUseBytes);
    this.peakInUseBuffers = Math.max(this.peakInUseBuffers, this.inUseBuffers);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (this.idle.has(buffer)) return;
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
    this.idle.add(buffer);
    this.freeBytes += buffer.size;
    this.inUseBytes -= buffer.size;
    this.inUseBuffers--;
    const maxBytes = Math.max(MIN_FREE_BYTES, this.peakInUseBytes);
    const maxBuffers = Math.max(MIN_FREE_BUFFERS, this.peakInUseBuffers);
    while (this.freeBytes > maxBytes || this.idle.size > maxBuffers) {
      const oldest = this.idle.values().next().value as GPUBuffer;
      this.drop(oldest);
    }
  }

  /**
   * The free buffer of this kind that was created first. Handing buffers out in a fixed order
   * (not last-released-first) gives a repeated workload the same buffers in the same roles
   * whatever happened in between, so its cached bind groups are found again instead of new
   * combinations piling up.
   */
  private takeFree(key: string): GPUBuffer | undefined {
    const list = this.free.get(key);
    if (!list || list.length === 0) return undefined;
    let best = 0;
    for (let i = 1; i < list.length; i++) if (bufferId(list[i]) < bufferId(list[best])) best = i;
    return list.splice(best, 1)[0];
  }

  /** Destroys every free buffer. */
  trim(): void {
    for (const buffer of [...this.idle]) this.drop(buffer);
  }

  private drop(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.free.get(key);
    if (list) {
      list.splice(list.indexOf(buffer), 1);
      if (list.length === 0) this.free.delete(key);
    }
    this.idle.delete(buffer);
    this.freeBytes -= buffer.size;
    this.allocatedBytes -= buffer.size;
    this.retire(buffer);
  }
}
