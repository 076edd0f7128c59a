/**
 * Buffer pool: solvers take their scratch buffers here and give them back after a solve, so a
 * training loop of identical solves allocates nothing after the first step (and bind groups,
 * cached by buffer identity, are found again).
 */
import { BufferUsage } from './flags';

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  /** Bytes currently allocated by this pool (in use or free). */
  allocatedBytes = 0;
  /** Highest value `allocatedBytes` reached. */
  peakBytes = 0;

  constructor(private readonly device: GPUDevice) {}

  acquire(size: number, usage: number = STORAGE_USAGE, label = 'anchorax scratch'): GPUBuffer {
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const list = this.free.get(`${usage}:${bytes}`);
    const reused = list?.pop();
    if (reused) return reused;
    const buffer = this.device.createBuffer({ label, size: bytes, usage });
    this.allocatedBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
  }

  /** Destroys every free buffer. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.allocatedBytes -= buffer.size;
        buffer.destroy();
      }
    }
    this.free.clear();
  }
}
