/**
 * The engine: one GPUDevice, its compiled kernels, a buffer pool, and the tensor factory.
 * `Engine.create()` finds a device (browser or Node); `Engine.fromDevice()` joins an app's own.
 */
import { BufferUsage, MapMode, ShaderStage } from './gpu/flags';
import { acquireDevice, type PowerPreference } from './gpu/device';
import { Kernel, bufferId, type CompileOptions } from './gpu/kernel';
import { BufferPool, STORAGE_USAGE } from './gpu/pool';
import { subgroupSource, wgslConstant } from './gpu/shaders';
import { Tensor, checkShape } from './tensor';
import { type AnchoraxError, DeviceLostError, DisposedError, EngineMismatchError, GpuValidationError, LimitError, NonFiniteError, OptionError, ShapeError } from './errors';
import { LEAK_WARNINGS_DEFAULT, Lifetimes, type LeakWarnings } from './scope';
import { platform } from './platform';
import { describe, isGpuBuffer, readChoice, readDevice, readOptions, readSwitch, readTensor, readValues } from './validate';

/** How long a failed readback waits for `device.lost` to settle before reporting the raw error. */
const LOST_GRACE_MS = 250;

/** The fewest lanes the subgroup variants of the kernels allow for (lib/reduce_subgroups.wgsl). */
const MIN_SUBGROUP_LANES = wgslConstant('reduceSubgroups', 'MIN_SUBGROUP_LANES', 'u32');

/**
 * Uniform buffers the engine keeps cached (least recently used dropped first, and destroyed).
 * Kernels' small `params` uniforms are cached by value, so that a configuration met again finds
 * the same buffer and the same bind groups; values that change every call (an eps schedule, an
 * accumulation scale) no longer pile up.
 */
export const UNIFORM_CACHE_SIZE = 512;
/** Compiled kernels the engine keeps cached (least recently used dropped first). */
export const KERNEL_CACHE_SIZE = 512;

/**
 * What {@link Engine.memory} reports: GPU memory the engine holds and the size of its caches
 * (all bounded: see UNIFORM_CACHE_SIZE, KERNEL_CACHE_SIZE, MAX_CACHED_GROUPS per kernel, and the
 * buffer pool's bound in gpu/pool.ts).
 */
export interface EngineMemory {
  /**
   * Bytes of the engine's storage and staging buffers: held by live tensors, layers, optimizers
   * and solves, or free in the pool for reuse.
   */
  allocatedBytes: number;
  /** The highest `allocatedBytes` so far. */
  peakBytes: number;
  /** Of `allocatedBytes`, the bytes free in the pool (kept for reuse, within the pool's bound). */
  pooledBytes: number;
  /** Number of free buffers in the pool. */
  pooledBuffers: number;
  /**
   * Cached uniform buffers: at most UNIFORM_CACHE_SIZE, plus, while solves run, those dropped
   * from the cache that a running solve still binds (destroyed when it ends).
   */
  uniformBuffers: number;
  /** Their bytes (not part of `allocatedBytes`). */
  uniformBytes: number;
  /** Cached compiled kernels (at most KERNEL_CACHE_SIZE). */
  kernels: number;
  /** Cached bind groups over the cached kernels (at most MAX_CACHED_GROUPS each). */
  bindGroups: number;
}

/** What `process` offers that the exit hook uses (Node; absent in browsers). */
interface ExitHost {
  versions?: { node?: string };
  on?: (event: 'exit', listener: () => void) => unknown;
}

/** Devices of live engines, destroyed when the Node process exits (see {@link destroyAtExit}). */
const liveDevices = new Set<WeakRef<GPUDevice>>();
let exitHookInstalled = false;

/**
 * Registers `device` to be destroyed when the Node process exits. `process.exit()` while work is
 * still queued on a device (a submit nothing awaited: a solver's look-ahead chunk, a backward,
 * a loss) crashes dawn.node's teardown (SIGSEGV); destroying the device first lets it drain. One
 * listener for every engine; a no-op outside Node.
 */
function destroyAtExit(device: GPUDevice): void {
  const host = (globalThis as { process?: ExitHost }).process;
  if (!host?.versions?.node || typeof host.on !== 'function') return;
  for (const ref of liveDevices) if (ref.deref() === undefined) liveDevices.delete(ref);
  liveDevices.add(new WeakRef(device));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  host.on('exit', () => {
    for (const ref of liveDevices) ref.deref()?.destroy();
    liveDevices.clear();
  });
}

/**
 * Takes `device` off the exit list: after a TimeoutError its work still runs, and destroying it
 * would wait for that work (for ever, on SwiftShader), so exit leaves it alone.
 */
function spareAtExit(device: GPUDevice): void {
  for (const ref of liveDevices) if (ref.deref() === device || ref.deref() === undefined) liveDevices.delete(ref);
}

function ignore(): void {}

/** Options of {@link Engine.create}. */
export interface EngineOptions {
  /** Passed to `requestAdapter`. Default `'high-performance'`. */
  powerPreference?: PowerPreference;
  /**
   * Warn (console.warn, once per engine) when a tensor is garbage-collected without `dispose()`,
   * naming its shape. `'trace'` also records where each tensor is created, for the warning to say
   * (it makes creating tensors much slower: for debugging). Default: `true`, unless
   * `process.env.NODE_ENV === 'production'` (which bundlers substitute).
   */
  leakWarnings?: LeakWarnings;
}

/** Options of {@link Engine.fromDevice}. */
export type FromDeviceOptions = Pick<EngineOptions, 'leakWarnings'>;

/** @internal What {@link Engine.readBytes} takes besides the buffer and the byte count. */
export interface ReadOptions {
  /** Byte offset into the buffer (default 0). */
  offset?: number;
  /** Work encoded before the copy into the same submit. */
  encode?: (encoder: GPUCommandEncoder) => void;
  /** The operation named by a failure (default 'read'). */
  what?: string;
  /** Work submitted on its own first (see Engine.submit). */
  start?: ((encoder: GPUCommandEncoder) => void) | GPUCommandBuffer;
  /** Awaited after the submit, before the map (see Engine.readBytes). */
  settle?: () => Promise<void>;
}

/**
 * What the engine has sent to the GPU so far (see {@link Engine.counters}): exact counts, for
 * tests and benchmarks that hold the library to its dispatch, submit and readback budgets.
 */
export interface EngineCounters {
  /** Compute dispatches the library's kernels encoded (layers, stages, solvers, optimizers, losses). */
  readonly dispatches: number;
  /** Command buffers submitted to the device's queue. */
  readonly submits: number;
  /** GPU→CPU readbacks (`mapAsync` of a staging buffer). */
  readonly readbacks: number;
  /**
   * CPU time, in microseconds, the library spent encoding the work it submitted (filling command
   * encoders and finishing them; `performance.now()` resolution, so a rough sum of many short spans).
   */
  readonly encodeMicros: number;
  /** GPU buffers created (`device.createBuffer`: storage, staging and uniform buffers; a buffer the pool hands out again is not counted). */
  readonly buffersCreated: number;
  /** Bind groups created (`device.createBindGroup`: a group found in a kernel's cache is not counted). */
  readonly bindGroupsCreated: number;
}

export class Engine {
  /** The WebGPU device every tensor and kernel of this engine lives on. */
  readonly device: GPUDevice;
  /** @internal The live counts behind {@link counters} (kernels add their dispatches). */
  readonly tally = { dispatches: 0, submits: 0, readbacks: 0, encodeMicros: 0, buffersCreated: 0, bindGroupsCreated: 0 };
  private readonly pool: BufferPool;
  /** Compiled kernels by key, least recently used first. */
  private readonly kernels = new Map<string, Promise<Kernel>>();
  /** Kernels of `kernels` that finished compiling (their bind-group caches). */
  private readonly compiled = new Map<string, Kernel>();
  /** The key part of frozen uniform-value objects callers pass again and again. */
  private readonly valueKeys = new WeakMap<Readonly<Record<string, number>>, string>();
  /** Uniform buffers by key (kernel and values), least recently used first. */
  private readonly uniforms = new Map<string, GPUBuffer>();
  /** The key of each uniform buffer made by uniformBuffer (see touchUniform). */
  private readonly uniformKeys = new WeakMap<GPUBuffer, string>();
  private uniformBytes = 0;
  /** Buffers dropped from the caches, destroyed once the current task's encoding is submitted. */
  private retired: GPUBuffer[] = [];
  /** Pin counts of uniform buffers that bind groups held across submits still use (see pin). */
  private readonly pins = new Map<GPUBuffer, number>();
  /** Pinned buffers dropped from the cache: destroyed when the last pin goes. */
  private readonly evictedPinned = new Set<GPUBuffer>();
  private openGateBuffer?: GPUBuffer;
  private wrapLayout?: GPUBindGroupLayout;
  private lostReason: string | null = null;
  /** Why the engine was given up while its device still runs work (see `abandon`). */
  private abandoned: string | null = null;
  /** Set by `destroy()`: the engine is unusable from then on, whether or not it owned the device. */
  private destroyed = false;
  /** Checks of wrapped buffers still waiting for the device's answer (see {@link wrap}). */
  private readonly wrapChecks = new Set<Promise<void>>();
  /** Settles once `device.lost` has resolved and `lostReason` is set. */
  private readonly lost: Promise<void>;
  private readonly lifetimes: Lifetimes;
  /** The device's limits (fixed for its life), read once. */
  private readonly limits: GPUSupportedLimits;
  /** Who wants to hear of objects going away (see {@link listen}). */
  private readonly listeners = new Set<(gone: object) => void>();

  private constructor(device: GPUDevice, private readonly ownsDevice: boolean, leakWarnings: LeakWarnings) {
    this.device = device;
    this.limits = device.limits;
    this.lifetimes = new Lifetimes(this, leakWarnings);
    this.pool = new BufferPool(device, (buffer) => this.retire(buffer), this.tally);
    this.lost = device.lost.then((info) => {
      this.lostReason = info.message || info.reason || 'device lost';
    });
    destroyAtExit(device);
  }

  /**
   * Finds a WebGPU device: `navigator.gpu` in a browser, Dawn (`webgpu` package) in Node.
   *
   * @throws OptionError (`'options.<name>'`), NoAdapterError.
   */
  static async create(options?: EngineOptions): Promise<Engine> {
    const opts = readOptions(options, 'options', ['powerPreference', 'leakWarnings']);
    const leakWarnings = readSwitch(opts.leakWarnings, 'options.leakWarnings', LEAK_WARNINGS_DEFAULT, ['trace']);
    const power = readChoice<PowerPreference>(opts.powerPreference, 'options.powerPreference', 'high-performance', ['high-performance', 'low-power']);
    return new Engine(await acquireDevice(power), true, leakWarnings);
  }

  /**
   * Uses a device the application already owns; `destroy()` will not destroy it.
   *
   * @throws OptionError (`'device'`) for anything that is not a GPUDevice, (`'options.<name>'`).
   */
  static fromDevice(device: GPUDevice, options?: FromDeviceOptions): Engine {
    const opts = readOptions(options, 'options', ['leakWarnings']);
    return new Engine(readDevice(device, 'device'), false, readSwitch(opts.leakWarnings, 'options.leakWarnings', LEAK_WARNINGS_DEFAULT, ['trace']));
  }

  /**
   * Runs `fn` and then disposes every tensor created on this engine while it ran (including those
   * inside results: `uStar`, gradients, losses…) except the ones reachable from its return value
   * through properties, array elements, Map and Set values (a returned result keeps what its
   * `backward` needs). Kept tensors belong to the enclosing scope, if any. Also disposes on a throw.
   * Wrapped tensors (`wrap`) are disposed as views; their buffers stay the caller's.
   *
   * Scopes track tensors by time, not by async flow: use them in sequential code, awaiting each
   * scope, or nest them. While a scope is open, tensors that code elsewhere creates on this engine
   * (a concurrent request, a timer) belong to it too. Scopes that close out of order — concurrent
   * scopes on one engine — dispose nothing and throw ScopeError. `keep(t)` takes a tensor out.
   *
   * ```ts
   * for (let step = 0; step < steps; step++) {
   *   const loss = await engine.scope(async () => {
   *     const out = await jfb(f, Qd);
   *     const l = await mse(out.uStar, target);
   *     const grads = await out.backward(l.grad);
   *     await optimizer.step([grads.weight, grads.bias]);
   *     return l.value();      // a number: every tensor above is disposed
   *   });
   * }
   * ```
   *
   * @throws ScopeError (`'engine.scope'`) when scopes closed out of order; OptionError (`'fn'`) when
   * `fn` is not a function; whatever `fn` throws.
   */
  scope<T>(fn: () => T | Promise<T>): Promise<T> {
    if (typeof fn !== 'function') return Promise.reject(new OptionError('fn', `must be a function, got ${describe(fn)}`));
    return this.lifetimes.scope(fn);
  }

  /**
   * Takes `tensor` out of the scope it was created in, so the scope's end does not dispose it.
   * @throws ShapeError (`'tensor'`: not a Tensor), DisposedError, EngineMismatchError.
   */
  keep<T extends Tensor>(tensor: T): T {
    readTensor(tensor, 'tensor', this);
    return this.lifetimes.keep(tensor);
  }

  /** @internal Number of tensors reported by leak warnings so far. */
  get leakCount(): number {
    return this.lifetimes.leakCount;
  }

  /** @internal Called by the Tensor constructor: scope membership and leak tracking. */
  trackTensor(tensor: Tensor, owned: boolean): void {
    this.lifetimes.created(tensor, owned);
  }

  /** @internal Called by `Tensor.dispose`. */
  untrackTensor(tensor: Tensor): void {
    this.lifetimes.disposed(tensor);
  }

  /**
   * Number of GPU→CPU readbacks (`mapAsync` calls) made so far: a diagnostic for residency
   * (`counters.readbacks`).
   */
  get readbackCount(): number {
    return this.tally.readbacks;
  }

  /**
   * Dispatches, submits and readbacks since the engine was created, as a snapshot: take one
   * before and after some work and subtract. Dispatches count those of the library's kernels
   * (every layer, stage, solver, optimizer and loss, and `defineLayer`'s); work you encode with
   * your own pipelines is not seen.
   */
  get counters(): EngineCounters {
    return { ...this.tally };
  }

  /** @internal Submits command buffers to the queue, counted (the one place the engine submits). */
  queueSubmit(buffers: GPUCommandBuffer[]): void {
    this.tally.submits++;
    this.device.queue.submit(buffers);
  }

  /** GPU memory the engine holds now (and the peak so far), and the size of its caches. */
  get memory(): EngineMemory {
    let bindGroups = 0;
    for (const kernel of this.compiled.values()) bindGroups += kernel.cachedGroups;
    return {
      allocatedBytes: this.pool.allocatedBytes,
      peakBytes: this.pool.peakBytes,
      pooledBytes: this.pool.freeBytes,
      pooledBuffers: this.pool.freeBuffers,
      uniformBuffers: this.uniforms.size + this.evictedPinned.size,
      uniformBytes: this.uniformBytes + [...this.evictedPinned].reduce((sum, b) => sum + b.size, 0),
      kernels: this.kernels.size,
      bindGroups,
    };
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
    // Not checked (a sync call): an engine-owned buffer cleared in full cannot fail validation.
    const encoder = this.device.createCommandEncoder({ label: 'anchorax engine.zeros' });
    encoder.clearBuffer(buffer);
    this.queueSubmit([encoder.finish()]);
    return new Tensor(this, buffer, shape, true);
  }

  /**
   * Zero-copy view of a caller's buffer (needs STORAGE usage; COPY_SRC to `read()` it). The
   * caller keeps ownership: `dispose()` on the tensor leaves the buffer alone. Values are not
   * checked for NaN (that would need a readback); a solve that meets NaN ends with
   * `stats.converged = false` and `stats.nonFinite = true`.
   *
   * WebGPU cannot tell synchronously whether a buffer was destroyed or belongs to another device,
   * so `wrap` asks the device (no GPU work, an answer within a fraction of a millisecond) and the
   * first call that uses the tensor waits for the answer: it then throws DisposedError (buffer
   * destroyed before `wrap`) or EngineMismatchError (buffer of another GPUDevice) naming its own
   * argument (`'Qd'`, `'gradUStar'`…). A buffer destroyed after `wrap` makes the calls that use it
   * reject with GpuValidationError naming the call.
   *
   * @throws ShapeError (`'buffer'`) when `buffer` is not a GPUBuffer, lacks STORAGE usage, is
   * mapped, or is smaller than `shape`; ShapeError (`'shape'`).
   * @throws LimitError (`'buffer'`) when the buffer is larger than the device can bind.
   * @throws DeviceLostError (`'engine.wrap'`) after `destroy()` or once the device is lost.
   */
  wrap(buffer: GPUBuffer, shape: readonly number[]): Tensor {
    this.assertAlive('engine.wrap');
    if (!isGpuBuffer(buffer)) throw new ShapeError('buffer', `must be a GPUBuffer, got ${describe(buffer)}`);
    checkShape(shape, 'shape');
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(buffer.usage & BufferUsage.STORAGE)) throw new ShapeError('buffer', 'needs GPUBufferUsage.STORAGE');
    if (buffer.mapState !== 'unmapped') throw new ShapeError('buffer', `is ${buffer.mapState === 'mapped' ? 'mapped' : 'being mapped'}; unmap() it first`);
    if (buffer.size < size * 4) {
      throw new ShapeError('buffer', `holds ${buffer.size} bytes but shape [${shape.join(', ')}] needs ${size * 4}`);
    }
    this.assertFits(buffer.size, 'buffer');
    const tensor = new Tensor(this, buffer, shape, false);
    this.checkWrapped(tensor, size * 4);
    return tensor;
  }

  /**
   * Releases the pool; destroys the device if the engine created it. Every later call on the
   * engine, its tensors or its layers throws (or rejects with) DeviceLostError. Tensors
   * garbage-collected afterwards are not reported as leaks. After a TimeoutError it does nothing
   * more: the device is still running the work that timed out, and destroying it (or its
   * buffers) would wait for that work — for ever, on a CPU implementation without a watchdog.
   */
  destroy(): void {
    this.destroyed = true;
    this.released(this);
    this.lifetimes.end();
    if (this.abandoned !== null) return;
    this.pool.trim();
    this.pins.clear();
    for (const buffer of [...this.uniforms.values(), ...this.evictedPinned]) this.retire(buffer);
    this.uniforms.clear();
    this.evictedPinned.clear();
    this.uniformBytes = 0;
    this.destroyRetired();
    if (this.ownsDevice) this.device.destroy();
  }

  // ---- internal (used by layers and solvers; not part of the public API) ----

  /**
   * @internal Tests: make the choices `cpuAdapter` steers as for this kind of adapter, whatever
   * the device is (so a CPU test machine runs the GPU's paths too).
   */
  planAs: 'cpu' | 'gpu' | undefined = undefined;

  /**
   * @internal Whether the device is a CPU implementation of WebGPU (SwiftShader, or the browser's
   * fallback adapter): kernels that pick their shape for a GPU pick differently there.
   */
  get cpuAdapter(): boolean {
    if (this.planAs !== undefined) return this.planAs === 'cpu';
    if (this.cpuDevice === undefined) {
      const info = this.device.adapterInfo as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
      this.cpuDevice = info?.architecture === 'swiftshader' || info?.isFallbackAdapter === true;
    }
    return this.cpuDevice;
  }

  /** What the adapter info says (read once: a solve's program key asks every call). */
  private cpuDevice?: boolean;

  /**
   * @internal Whether the host keeps its main thread busy while a map is pending (Dawn in Node:
   * src/platform.ts, spinsWhileWaiting), so that a long wait is better slept through first.
   */
  get spinsWhileWaiting(): boolean {
    return platform.spinsWhileWaiting === true;
  }

  /**
   * @internal Whether the engine compiles the subgroup variants of the library's kernels
   * (src/gpu/shaders.ts subgroupSource): when the device has the `subgroups` feature, which
   * Engine.create requests wherever the adapter offers it. An app's device (Engine.fromDevice)
   * is used as it was created: without the feature, the portable kernels. The variants assume
   * subgroups of at least 4 lanes (lib/reduce_subgroups.wgsl sizes its scratch so), as WebGPU
   * promises; an adapter whose info says otherwise gets the portable kernels.
   */
  get subgroups(): boolean {
    const info = this.device.adapterInfo as (GPUAdapterInfo & { subgroupMinSize?: number }) | undefined;
    return this.device.features.has('subgroups') && (info?.subgroupMinSize ?? MIN_SUBGROUP_LANES) >= MIN_SUBGROUP_LANES;
  }

  /** @internal Throws DeviceLostError if the device is gone. */
  assertAlive(what: string): void {
    if (this.destroyed) throw new DeviceLostError(what, 'the engine was destroyed (engine.destroy())');
    if (this.lostReason !== null) throw new DeviceLostError(what, `the GPU device was lost (${this.lostReason})`);
    if (this.abandoned !== null) throw new DeviceLostError(what, `this engine is unusable: ${this.abandoned}; create a new engine`);
  }

  /**
   * @internal Gives the engine up after GPU work ran past its time limit: the work cannot be
   * cancelled, so every later call throws DeviceLostError with `reason`, and destroy() leaves
   * the device alone.
   */
  abandon(reason: string): void {
    this.abandoned ??= reason;
    spareAtExit(this.device);
  }

  /**
   * @internal Throws LimitError (naming `argument`) unless a storage buffer of `bytes` can be
   * created and bound on this device. Allocates nothing.
   */
  assertFits(bytes: number, argument: string): void {
    const limits = this.limits;
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
    if (!this.openGateBuffer) {
      this.openGateBuffer = this.device.createBuffer({ label: 'anchorax open gate', size: 16, usage: BufferUsage.STORAGE });
      this.tally.buffersCreated++;
    }
    return this.openGateBuffer;
  }

  /** @internal Gives a buffer back to the pool. */
  releaseBuffer(buffer: GPUBuffer): void {
    this.released(buffer);
    this.pool.release(buffer);
  }

  /**
   * @internal Calls `listener` with every object that goes away from now on: a buffer given back
   * to the pool (a tensor disposed, a layer's scratch freed) or dropped from the uniform cache, a
   * layer disposed, or the engine itself at `destroy()`. Caches that hold GPU objects made for
   * those (the solve programs, src/solvers/program.ts) drop them then. Returns the unsubscribe.
   */
  listen(listener: (gone: object) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal Tells the listeners (see {@link listen}) that `gone` went away. */
  released(gone: object): void {
    for (const listener of this.listeners) listener(gone);
  }

  /** @internal Whether some wrapped buffer's check still waits for the device (see {@link settleWraps}). */
  get wrapsPending(): boolean {
    return this.wrapChecks.size > 0;
  }

  /**
   * @internal A compiled kernel, compiled once per engine and cached by `name`, entry point and the
   * override `constants` (LRU, KERNEL_CACHE_SIZE). A library kernel that has a subgroup variant is compiled
   * as that variant on a device with the `subgroups` feature (see {@link subgroups}).
   */
  kernel(name: string, source: string, entryPoint = 'main', options: CompileOptions = {}): Promise<Kernel> {
    const entry = entryPoint === 'main' ? name : `${name}.${entryPoint}`;
    const key = options.constants ? `${entry}{${Object.entries(options.constants).map(([k, v]) => `${k}=${v}`).join(',')}}` : entry;
    let kernel = this.kernels.get(key);
    if (kernel) {
      this.kernels.delete(key);
      this.kernels.set(key, kernel);
      return kernel;
    }
    const code = (this.subgroups && subgroupSource(source)) || source;
    const compiling = Kernel.compile(this.device, key, code, entryPoint, { ...options, tally: this.tally });
    kernel = compiling;
    this.kernels.set(key, compiling);
    compiling.then(
      (done) => {
        if (this.kernels.get(key) === compiling) this.compiled.set(key, done);
      },
      () => {
        if (this.kernels.get(key) === compiling) this.kernels.delete(key);
      },
    );
    while (this.kernels.size > KERNEL_CACHE_SIZE) {
      // Dropped from the cache only: layers holding the kernel keep using it.
      const oldest = this.kernels.keys().next().value as string;
      this.kernels.delete(oldest);
      this.compiled.delete(oldest);
    }
    return kernel;
  }

  /**
   * @internal A uniform buffer holding `bytes`, cached by `key` (LRU, UNIFORM_CACHE_SIZE): the
   * same configuration gets the same buffer (and so the same cached bind groups) every solve. A
   * buffer is valid for the encoding in progress: one dropped from the cache is destroyed only
   * after the current task (so after the submit of what is being encoded), and bind groups that
   * bind it are dropped with it — ask again for each new encoding.
   */
  uniformBuffer(key: string, bytes: ArrayBuffer): GPUBuffer {
    const cached = this.cachedUniform(key);
    if (cached) return cached;
    const buffer = this.device.createBuffer({ label: key, size: bytes.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    this.tally.buffersCreated++;
    this.device.queue.writeBuffer(buffer, 0, bytes);
    this.uniforms.set(key, buffer);
    this.uniformKeys.set(buffer, key);
    this.uniformBytes += buffer.size;
    while (this.uniforms.size > UNIFORM_CACHE_SIZE) {
      const [oldestKey, oldest] = this.uniforms.entries().next().value as [string, GPUBuffer];
      this.uniforms.delete(oldestKey);
      this.uniformBytes -= oldest.size;
      this.retire(oldest);
    }
    return buffer;
  }

  /** @internal Uniform buffer for `kernel`'s `params` struct with these values (see uniformBuffer). */
  params(kernel: Kernel, values: Readonly<Record<string, number>>): GPUBuffer {
    const layout = kernel.params;
    if (!layout) throw new Error(`kernel ${kernel.label} has no params uniform`);
    let valuesKey = this.valueKeys.get(values);
    if (valuesKey === undefined) {
      valuesKey = Object.entries(values).map(([k, v]) => `${k}=${v}`).join(',');
      // Only frozen objects are remembered: their key cannot go stale.
      if (Object.isFrozen(values)) this.valueKeys.set(values, valuesKey);
    }
    const key = `${kernel.label}|${valuesKey}`;
    return this.cachedUniform(key) ?? this.uniformBuffer(key, layout.pack(values));
  }

  /**
   * @internal Marks a uniform buffer from `params` as just used, as asking for it again would: for
   * callers that keep a bind group made with it and encode that group again (DenseKernels).
   */
  touchUniform(buffer: GPUBuffer): void {
    const key = this.uniformKeys.get(buffer);
    if (key !== undefined) this.cachedUniform(key);
  }

  /** The cached uniform buffer of `key`, marked as just used. */
  private cachedUniform(key: string): GPUBuffer | undefined {
    const buffer = this.uniforms.get(key);
    if (buffer) {
      this.uniforms.delete(key);
      this.uniforms.set(key, buffer);
    }
    return buffer;
  }

  /**
   * @internal Keeps a uniform buffer from `params` alive while a bind group made with it is used
   * over several submits (a solve's groups, made once, across its chunks): dropped from the cache
   * meanwhile, it is destroyed only at the matching `unpin`.
   */
  pin(buffer: GPUBuffer): void {
    this.pins.set(buffer, (this.pins.get(buffer) ?? 0) + 1);
  }

  /** @internal Ends one `pin`. */
  unpin(buffer: GPUBuffer): void {
    const count = (this.pins.get(buffer) ?? 0) - 1;
    if (count > 0) {
      this.pins.set(buffer, count);
      return;
    }
    this.pins.delete(buffer);
    if (this.evictedPinned.delete(buffer)) this.retire(buffer);
  }

  /**
   * Destroys `buffer` once the current task is over (or, when pinned, at its last unpin). Work
   * already submitted may still use it (WebGPU keeps a destroyed buffer alive for it); what
   * matters is that no later submit does, so the cached bind groups that bind it are dropped too.
   */
  private retire(buffer: GPUBuffer): void {
    // A pinned uniform's holders may give their pins back now (a cached solve program does).
    if (this.uniformKeys.has(buffer)) this.released(buffer);
    if (this.pins.has(buffer)) {
      this.evictedPinned.add(buffer);
      return;
    }
    this.retired.push(buffer);
    if (this.retired.length === 1) queueMicrotask(() => this.destroyRetired());
  }

  private destroyRetired(): void {
    if (this.retired.length === 0) return;
    const buffers = this.retired;
    this.retired = [];
    const ids = new Set(buffers.map(bufferId));
    for (const kernel of this.compiled.values()) kernel.forget(ids);
    for (const buffer of buffers) buffer.destroy();
  }

  /** @internal Copies `bytes` of `buffer` (from `offset`) to the CPU. Counted in readbackCount. */
  async readBuffer(buffer: GPUBuffer, bytes: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(buffer, bytes, { offset }));
  }

  /**
   * @internal Raw bytes readback; see readBuffer. `encode` adds work before the copy to the same
   * submit (a solver chunk); `start`, work submitted on its own before that (see {@link submit}).
   * `settle` is awaited between the submit and the map: a caller that expects the GPU to take a
   * while sleeps there where waiting on a map keeps the host busy ({@link spinsWhileWaiting}).
   * Checked like {@link submit}: failures name `what`.
   */
  async readBytes(buffer: GPUBuffer, bytes: number, options: ReadOptions = {}): Promise<ArrayBuffer> {
    const { offset = 0, encode, what = 'read', start, settle } = options;
    this.assertAlive(what);
    const size = Math.ceil(bytes / 4) * 4;
    // Taken once the start (if any) is submitted: nothing before it that need not be.
    let staging: GPUBuffer | undefined;
    let checked: Promise<void>;
    try {
      checked = this.submit(
        what,
        (encoder) => {
          staging = this.pool.acquire(size, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'anchorax staging');
          encode?.(encoder);
          encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
        },
        start,
      );
    } catch (err) {
      if (staging) this.pool.release(staging);
      throw err;
    }
    if (!staging) throw new Error('readBytes: the submit took no staging buffer');
    this.tally.readbacks++;
    if (settle) {
      // `checked` may settle while this sleeps: it is awaited below, so it is not left unhandled.
      checked.catch(ignore);
      await settle();
    }
    const [mapped, valid] = await Promise.allSettled([staging.mapAsync(MapMode.READ, 0, size), checked]);
    if (mapped.status === 'rejected') {
      await this.assertAliveAfterFailure(what);
      throw valid.status === 'rejected' ? valid.reason : mapped.reason;
    }
    if (valid.status === 'rejected') {
      staging.unmap();
      this.pool.release(staging);
      throw valid.reason;
    }
    const copy = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.pool.release(staging);
    return copy;
  }

  /**
   * @internal The one way GPU work is submitted: `encode` fills a fresh command encoder, which
   * is submitted, all inside validation and out-of-memory error scopes. The promise (which the
   * calling operation must await before it resolves) rejects with GpuValidationError or
   * LimitError naming `what` when the device rejected the work, and with DeviceLostError when
   * the device is gone. Throws synchronously what `encode` throws (its typed errors). `start`,
   * when given, fills a command buffer of its own that is submitted first, inside the same
   * scopes: a solve's start (src/solvers/run.ts), which the GPU runs while `encode` encodes; or
   * that start's command buffer, encoded ahead.
   */
  submit(what: string, encode: (encoder: GPUCommandEncoder) => void, start?: ((encoder: GPUCommandEncoder) => void) | GPUCommandBuffer): Promise<void> {
    this.assertAlive(what);
    const { device } = this;
    // With a start, only the validation scope comes before it (a start copies, it allocates
    // nothing), so its submit comes sooner; the out-of-memory scope then goes on top of it (an
    // error reaches the innermost scope of its kind, so each scope still sees all of its own).
    // A start encoded ahead (a cached solve program's) only clears buffers of the program's
    // own, so it cannot fail validation: it goes before the scopes.
    if (start && typeof start !== 'function') this.queueSubmit([start]);
    const early = typeof start === 'function';
    let scopes = 0;
    const push = (filter: GPUErrorFilter): void => {
      device.pushErrorScope(filter);
      scopes++;
    };
    if (!early) push('out-of-memory');
    push('validation');
    try {
      if (early) {
        const first = device.createCommandEncoder();
        start(first);
        this.queueSubmit([first.finish()]);
        push('out-of-memory');
      }
      const started = performance.now();
      const encoder = device.createCommandEncoder({ label: `anchorax ${what}` });
      encode(encoder);
      const buffer = encoder.finish();
      this.tally.encodeMicros += 1000 * (performance.now() - started);
      this.queueSubmit([buffer]);
    } catch (err) {
      // Whatever the scopes caught follows from the throw, which is the error to report.
      for (; scopes > 0; scopes--) device.popErrorScope().catch(ignore);
      throw err;
    }
    const inner = device.popErrorScope();
    const outer = device.popErrorScope();
    return early ? this.scopeOutcome(what, outer, inner) : this.scopeOutcome(what, inner, outer);
  }

  /**
   * @internal {@link submitPass} of work that writes tensors `outputs()` creates (inside the
   * scopes, so their allocation is checked too); frees them and rethrows when the device rejects
   * the work.
   */
  async submitInto<T extends Record<string, Tensor | undefined>>(what: string, outputs: () => T, encode: (pass: GPUComputePassEncoder, out: T) => void): Promise<T> {
    let out: T | undefined;
    try {
      await this.submitPass(what, (pass) => {
        out = outputs();
        encode(pass, out);
      });
    } catch (err) {
      for (const t of Object.values(out ?? {})) t?.dispose();
      throw err;
    }
    return out as T;
  }

  /** @internal {@link submit} of one compute pass. */
  submitPass(what: string, encode: (pass: GPUComputePassEncoder) => void): Promise<void> {
    return this.submit(what, (encoder) => {
      const pass = encoder.beginComputePass();
      encode(pass);
      pass.end();
    });
  }

  /**
   * @internal Resolves once every wrapped buffer's check has its answer (at once when none is
   * pending), so that `assertUsable` then sees a rejected buffer. Async calls await it before
   * checking their tensors.
   */
  async settleWraps(): Promise<void> {
    if (this.wrapChecks.size > 0) await Promise.all(this.wrapChecks);
  }

  private async scopeOutcome(what: string, validation: Promise<GPUError | null>, memory: Promise<GPUError | null>): Promise<void> {
    let invalid: GPUError | null;
    let outOfMemory: GPUError | null;
    try {
      [invalid, outOfMemory] = await Promise.all([validation, memory]);
    } catch (err) {
      await this.assertAliveAfterFailure(what);
      throw err;
    }
    this.assertAlive(what);
    if (outOfMemory) throw new LimitError(what, `the GPU ran out of memory: ${outOfMemory.message}`);
    if (invalid) throw new GpuValidationError(what, `the GPU rejected the work of this call: ${invalid.message}`);
  }

  /**
   * Asks the device whether a wrapped buffer is usable: a bind group over it fails when the buffer
   * belongs to another device, and a submit that references it fails when it was destroyed. The
   * empty pass runs nothing. The answer marks the tensor (see Tensor.reject).
   */
  private checkWrapped(tensor: Tensor, bytes: number): void {
    const { device } = this;
    this.wrapLayout ??= device.createBindGroupLayout({
      label: 'anchorax wrap check',
      entries: [{ binding: 0, visibility: ShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } }],
    });
    device.pushErrorScope('validation');
    const group = device.createBindGroup({ layout: this.wrapLayout, entries: [{ binding: 0, resource: { buffer: tensor.buffer, size: bytes } }] });
    this.tally.bindGroupsCreated++;
    const foreign = device.popErrorScope();
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label: 'anchorax wrap check' });
    const pass = encoder.beginComputePass();
    pass.setBindGroup(0, group);
    pass.end();
    this.queueSubmit([encoder.finish()]);
    const destroyed = device.popErrorScope();
    const check = Promise.all([foreign, destroyed]).then(
      ([other, gone]) => {
        const reject = (make: (argument: string) => AnchoraxError): void => tensor.reject(make);
        if (other) reject((argument) => new EngineMismatchError(argument, `the wrapped buffer belongs to another GPUDevice than this engine's (${other.message})`));
        else if (gone) reject((argument) => new DisposedError(argument, `the wrapped buffer was destroyed (${gone.message})`));
      },
      ignore, // the device is gone: every call reports DeviceLostError anyway
    );
    this.wrapChecks.add(check);
    void check.then(() => this.wrapChecks.delete(check));
  }
}
