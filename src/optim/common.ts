/**
 * Helpers shared by the optimizers and the gradient accumulator: argument validation with errors
 * that name the argument, and elementwise dispatch sizing.
 */
import type { Engine } from '../engine';
import { ShapeError } from '../errors';
import type { BufferRegion, Kernel } from '../gpu/kernel';
import { Tensor } from '../tensor';

/** Threads per workgroup of the elementwise optimizer kernels (matches the WGSL). */
const WORKGROUP = 256;

/**
 * Exactly the tensor's floats: the kernels take n from `arrayLength`, and pooled or wrapped
 * buffers may be larger than the tensor.
 */
export function region(tensor: Tensor): BufferRegion {
  return { buffer: tensor.buffer, offset: 0, size: tensor.size * 4 };
}

/** Encodes one grid-stride elementwise dispatch over `n` elements. */
export function dispatchElementwise(engine: Engine, pass: GPUComputePassEncoder, kernel: Kernel, group: GPUBindGroup, n: number): void {
  const groups = Math.min(Math.ceil(n / WORKGROUP), engine.device.limits.maxComputeWorkgroupsPerDimension);
  kernel.dispatch(pass, group, groups);
}

/**
 * Validates a list of parameter tensors: non-empty, all usable on `engine` (null: on the engine
 * of the first one), none twice.
 * @throws ShapeError (`name` or `name[i]`), DisposedError / EngineMismatchError (`name[i]`).
 */
export function checkTensorList(engine: Engine | null, tensors: unknown, name: string): Tensor[] {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new ShapeError(name, 'must be a non-empty array of Tensors');
  const seen = new Map<GPUBuffer, number>();
  let owner = engine;
  return tensors.map((value: unknown, i) => {
    const label = `${name}[${i}]`;
    if (!(value instanceof Tensor)) throw new ShapeError(label, 'must be a Tensor');
    owner ??= value.engine;
    value.assertUsable(owner, label);
    const first = seen.get(value.buffer);
    // Two entries on one buffer would be updated twice per step.
    if (first !== undefined) throw new ShapeError(label, `shares its GPU buffer with ${name}[${first}]`);
    seen.set(value.buffer, i);
    return value;
  });
}

/**
 * Validates `tensors` (named `name`) against `like`: same count, same shapes, usable on
 * `engine`, and never the very buffer of the tensor it pairs with (a dispatch cannot read and
 * write one buffer through two bindings).
 * @throws ShapeError (`name`, `name[i]`), DisposedError / EngineMismatchError (`name[i]`).
 */
export function checkMatching(engine: Engine, like: readonly Tensor[], tensors: unknown, name: string, likeName: string): Tensor[] {
  if (!Array.isArray(tensors)) throw new ShapeError(name, 'must be an array of Tensors');
  if (tensors.length !== like.length) {
    throw new ShapeError(name, `has ${tensors.length} tensors but there are ${like.length} ${likeName}`);
  }
  return tensors.map((value: unknown, i) => {
    const label = `${name}[${i}]`;
    if (!(value instanceof Tensor)) throw new ShapeError(label, 'must be a Tensor');
    value.assertUsable(engine, label);
    const target = like[i];
    if (value.shape.join() !== target.shape.join()) {
      throw new ShapeError(label, `has shape [${value.shape.join(', ')}] but ${likeName}[${i}] has shape [${target.shape.join(', ')}]`);
    }
    if (value.buffer === target.buffer) throw new ShapeError(label, `is the same GPU buffer as ${likeName}[${i}]`);
    return value;
  });
}
