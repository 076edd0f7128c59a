/**
 * The engine: one GPUDevice, its compiled kernels, a buffer pool, and the tensor factory.
 * `Engine.create()` finds a device (browser or Node); `Engine.fromDevice()` joins an app's own.
 */
import { BufferUsage, MapMode } from './gpu/flags';
import { acquireDevice } from './gpu/device';
import { Kernel } from './gpu/kernel';
import { BufferPool, STORAGE_USAGE } from './gpu/pool';
import { Tensor, checkShape } from './tensor';
import { DeviceLostError, LimitError, NonFiniteError, ShapeError } from './errors';
import { TanhBlock, type TanhBlockParams } from './layers/tanh-block';
import { Adam, type AdamOptions } from './optim/adam';
import { SGD, type SgdOptions } from './optim/sgd';
import { readChoice, readDevice, readOptions, readValues } from './validate';

/** How long a failed readback waits for `device.lost` to settle before reporting the raw error. */
const LOST_GRACE_MS = 250;

/** Options of {@link Engine.create}. */
export interface EngineOptions {
  /** Passed to `requestAdapter`. Default `'high-performance'`. */
  powerPreference?: GPUPowerPreference;
}

export class Engine {
  /** The WebGPU device every tensor and kernel of this engine lives on. */
  readonly device: GPUDevice;
  /** Number of GPU→CPU readbacks (`mapAsync` calls) made so far: a diagnostic for residency. */
  readbackCount = 0;
  private readonly pool: BufferPool;
  private readonly kernels = new Map<string, Promise<Kernel>>();
  private readonly uniforms = new Map<string, GPUBuffer>();
  private openGateBuffer?: GPUBuffer;
  private lostReason: string | null = null;
  /** Settles once `device.lost` has resolved and `lostReason` is set. */
  private readonly lost: Promise<void>;

  private constructor(device: GPUDevice, private readonly ownsDevice: boolean) {
    this.device = device;
    this.pool = new BufferPool(device);
    this.lost = device.lost.then((info) => {
      this.lostReason = info.message || info.reason || 'device lost';
    });
  }

  /**
   * Finds a WebGPU device: `navigator.gpu` in a browser, Dawn (`webgpu` package) in Node.
   * @throws OptionError (`'options'`, `'options.<name>'`), NoAdapterError.
   */
  static async create(options?: EngineOptions): Promise<Engine> {
    const o = readOptions(options, 'options', ['powerPreference']);
    const powerPreference = readChoice<GPUPowerPreference>(o.powerPreference, 'options.powerPreference', 'high-performance', ['high-performance', 'low-power']);
    return new Engine(await acquireDevice(powerPreference), true);
  }

  /**
   * Uses a device the application already owns; `destroy()` will not destroy it.
   * @throws OptionError (`'device'`) for anything that is not a GPUDevice.
   */
  static fromDevice(device: GPUDevice): Engine {
    return new Engine(readDevice(device, 'device'), false);
  }

  /** Bytes of GPU memory the engine's pool holds now, and the peak so far. */
  get memory(): { allocatedBytes: number; peakBytes: number } {
    return { allocatedBytes: this.pool.allocatedBytes, peakBytes: this.pool.peakBytes };
  }

  /**
   * Uploads `data` as a float32 tensor of `shape`. `data` is a Float32Array, a Float64Array or an
   * array of numbers; anything else (a string, an integer typed array, an array holding strings)
   * is refused rather than converted.
   *
   * @throws ShapeError (`'shape'`: not a non-empty list of positive integers; `'data'`: not one
   * of those kinds, or wrong length), NonFiniteError (`'data'`: NaN/Infinity), LimitError (`'data'`: too large for the
   * device), DeviceLostError.
   */
  tensor(data: Float32Array | Float64Array | number[], shape: readonly number[]): Tensor {
    this.assertAlive('engine.tensor');
    readValues(data, 'data');
    checkShape(shape, 'shape');
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) {
      throw new ShapeError('data', `has ${data.length} values but shape [${shape.join(', ')}] needs ${size}`);
    }
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new NonFiniteError('data', `value ${values[i]} at index ${i} is not finite`);
    }
    const buffer = this.allocate(size * 4, 'data');
    this.device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
    return new Tensor(this, buffer, shape, true);
  }

  /**
   * A tensor of zeros.
   *
   * @throws ShapeError (`'shape'`), LimitError (`'shape'`: too large for the device; nothing is
   * allocated), DeviceLostError.
   */
  zeros(shape: readonly number[]): Tensor {
    this.assertAlive('engine.zeros');
    checkShape(shape, 'shape');
    const size = shape.reduce((a, b) => a * b, 1);
    const buffer = this.allocate(size * 4, 'shape');
    const encoder = this.device.createCommandEncoder();
    encoder.clearBuffer(buffer);
    this.device.queue.submit([encoder.finish()]);
    return new Tensor(this, buffer, shape, true);
  }

  /**
   * Zero-copy view of a caller's buffer (needs STORAGE usage; COPY_SRC to `read()` it). The
   * caller keeps ownership: `dispose()` on the tensor leaves the buffer alone. Values are not
   * checked for NaN (that would need a readback); a solve that meets NaN ends with
   * `stats.converged = false` and `stats.nonFinite = true`.
   *
   * @throws ShapeError (`'buffer'`) when the buffer lacks STORAGE usage or is smaller than `shape`.
   * @throws LimitError (`'buffer'`) when the buffer is larger than the device can bind.
   */
  wrap(buffer: GPUBuffer, shape: readonly number[]): Tensor {
    this.assertAlive('engine.wrap');
    checkShape(shape, 'shape');
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(buffer.usage & BufferUsage.STORAGE)) throw new ShapeError('buffer', 'needs GPUBufferUsage.STORAGE');
    if (buffer.size < size * 4) {
      throw new ShapeError('buffer', `holds ${buffer.size} bytes but shape [${shape.join(', ')}] needs ${size * 4}`);
    }
    this.assertFits(buffer.size, 'buffer');
    return new Tensor(this, buffer, shape, false);
  }

  /**
   * The tanh implicit block `f(u, Qd) = tanh(u @ w + Qd + b)`, with `w` of shape `[d, d]`
   * (row-major) and `b` of shape `[d]`, given as tensors or as arrays to upload. d is read from `w`.
   * With `dropout` the block is stochastic: `f(u, Qd) = tanh(u @ w + Qd + b) ⊙ mask / (1 − rate)`
   * in training mode (see `DropoutOptions`).
   *
   * @throws ShapeError (`'w'`, `'b'`), NonFiniteError (`'w'`, `'b'`: NaN/Infinity in an array),
   * DisposedError / EngineMismatchError (`'w'`, `'b'`: unusable tensors), OptionError
   * (`'dropout'`, `'dropout.rate'`, `'dropout.noise'`), DeviceLostError.
   */
  implicitBlock(params: TanhBlockParams): TanhBlock {
    this.assertAlive('engine.implicitBlock');
    return TanhBlock.create(this, params);
  }

  /**
   * An Adam optimizer over `params` (AdamW when `weightDecay` > 0: the decay is decoupled,
   * `p ← p − lr·weightDecay·p`, not added to the gradient). Moments and step count stay on the GPU.
   *
   * @throws OptionError (`'options.<name>'`), ShapeError (`'params'`, `'params[i]'`),
   * DisposedError / EngineMismatchError (`'params[i]'`), DeviceLostError.
   */
  adam(params: readonly Tensor[], options?: AdamOptions): Adam {
    return new Adam(this, params, options);
  }

  /**
   * An SGD optimizer over `params`, with optional momentum and (L2, PyTorch-style) weight decay.
   *
   * @throws OptionError (`'options.<name>'`), ShapeError (`'params'`, `'params[i]'`),
   * DisposedError / EngineMismatchError (`'params[i]'`), DeviceLostError.
   */
  sgd(params: readonly Tensor[], options?: SgdOptions): SGD {
    return new SGD(this, params, options);
  }

  /** Releases the pool; destroys the device if the engine created it. */
  destroy(): void {
    this.pool.trim();
    for (const buffer of this.uniforms.values()) buffer.destroy();
    this.uniforms.clear();
    if (this.ownsDevice) this.device.destroy();
  }

  // ---- internal (used by layers and solvers; not part of the public API) ----

  /**
   * @internal Whether the device is a CPU implementation of WebGPU (SwiftShader, or the browser's
   * fallback adapter): kernels that pick their shape for a GPU pick differently there.
   */
  get cpuAdapter(): boolean {
    const info = this.device.adapterInfo as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
    return info?.architecture === 'swiftshader' || info?.isFallbackAdapter === true;
  }

  /** @internal Throws DeviceLostError if the device is gone. */
  assertAlive(what: string): void {
    if (this.lostReason !== null) throw new DeviceLostError(what, `the GPU device was lost (${this.lostReason})`);
  }

  /**
   * @internal Throws LimitError (naming `argument`) unless a storage buffer of `bytes` can be
   * created and bound on this device. Allocates nothing.
   */
  assertFits(bytes: number, argument: string): void {
    const limits = this.device.limits;
    if (bytes > limits.maxStorageBufferBindingSize || bytes > limits.maxBufferSize) {
      throw new LimitError(
        argument,
        `needs a ${bytes}-byte buffer; this device allows maxStorageBufferBindingSize = ${limits.maxStorageBufferBindingSize}, ` +
          `maxBufferSize = ${limits.maxBufferSize}`,
      );
    }
  }

  /** @internal A storage buffer of at least `bytes`, checked against the device limits first. */
  allocate(bytes: number, argument: string, usage: number = STORAGE_USAGE): GPUBuffer {
    this.assertFits(bytes, argument);
    return this.pool.acquire(bytes, usage);
  }

  /**
   * @internal After a GPU operation failed: waits briefly for `device.lost` (which settles
   * asynchronously, possibly after the failure is reported) and throws DeviceLostError naming
   * `what` if the device is gone. Returns normally when it is not.
   */
  async assertAliveAfterFailure(what: string): Promise<void> {
    if (this.lostReason === null) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, LOST_GRACE_MS);
      });
      await Promise.race([this.lost, timeout]);
      clearTimeout(timer);
    }
    this.assertAlive(what);
  }

  /**
   * @internal An evaluation gate that is always open (word 0 = 0), for work outside a solve. All
   * its words are 0, so it also means inference mode (word 3 = 0): stochastic layers draw no noise.
   */
  openGate(): GPUBuffer {
    this.openGateBuffer ??= this.device.createBuffer({ label: 'anchorax open gate', size: 16, usage: BufferUsage.STORAGE });
    return this.openGateBuffer;
  }

  /** @internal Gives a buffer back to the pool. */
  releaseBuffer(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /** @internal A compiled kernel, compiled once per engine and cached by `key`. */
  kernel(key: string, source: string, entryPoint = 'main', locate?: (line: number) => string): Promise<Kernel> {
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = Kernel.compile(this.device, key, source, entryPoint, locate);
      this.kernels.set(key, kernel);
      kernel.catch(() => this.kernels.delete(key));
    }
    return kernel;
  }

  /**
   * @internal A uniform buffer holding `bytes`, cached by `key`: the same configuration gets the
   * same buffer (and so the same cached bind groups) every solve.
   */
  uniformBuffer(key: string, bytes: ArrayBuffer): GPUBuffer {
    let buffer = this.uniforms.get(key);
    if (!buffer) {
      buffer = this.device.createBuffer({ label: key, size: bytes.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
      this.device.queue.writeBuffer(buffer, 0, bytes);
      this.uniforms.set(key, buffer);
    }
    return buffer;
  }

  /** @internal Uniform buffer for `kernel`'s `params` struct with these values. */
  params(kernel: Kernel, values: Record<string, number>): GPUBuffer {
    const layout = kernel.params;
    if (!layout) throw new Error(`kernel ${kernel.label} has no params uniform`);
    const key = `${kernel.label}|${Object.entries(values).map(([k, v]) => `${k}=${v}`).join(',')}`;
    const cached = this.uniforms.get(key);
    return cached ?? this.uniformBuffer(key, layout.pack(values));
  }

  /** @internal Copies `bytes` of `buffer` (from `offset`) to the CPU. Counted in readbackCount. */
  async readBuffer(buffer: GPUBuffer, bytes: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(buffer, bytes, offset));
  }

  /** @internal Raw bytes readback; see readBuffer. */
  async readBytes(buffer: GPUBuffer, bytes: number, offset = 0, encoder?: GPUCommandEncoder): Promise<ArrayBuffer> {
    this.assertAlive('read');
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.pool.acquire(size, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'anchorax staging');
    const enc = encoder ?? this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    this.readbackCount++;
    try {
      await staging.mapAsync(MapMode.READ, 0, size);
    } catch (err) {
      await this.assertAliveAfterFailure('read');
      throw err;
    }
    const copy = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.pool.release(staging);
    return copy;
  }
}
