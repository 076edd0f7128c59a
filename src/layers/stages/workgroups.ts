/**
 * Sizes shared by the reduction stages (conv2d, the norms): one workgroup per output item, laid
 * out as a 2-D grid because the item count can pass maxComputeWorkgroupsPerDimension.
 */
import type { Engine } from '../../engine';
import { LimitError, ShapeError } from '../../errors';
import { describe } from '../../validate';

/**
 * The (x, y) dispatch of `count` workgroups; shaders read the linear index `wid.y·groups.x + wid.x`
 * and return when it is ≥ count.
 *
 * @throws LimitError (naming `argument`) when even a square grid does not fit the device.
 */
export function workgroupGrid(engine: Engine, count: number, argument: string): [number, number] {
  const limit = engine.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.max(1, Math.min(count, limit));
  const y = Math.max(1, Math.ceil(count / x));
  if (y > limit) throw new LimitError(argument, `needs ${count} workgroups; this device allows ${limit} × ${limit}`);
  return [x, y];
}

/** Throws ShapeError (`'batch'`) unless `batch` is a positive integer. */
export function checkBatch(batch: number): void {
  if (!Number.isInteger(batch) || batch < 1) throw new ShapeError('batch', `must be a positive integer, got ${describe(batch)}`);
}
