/**
 * Tensor lifetimes of one engine: `engine.scope(fn)` (dispose what fn created and did not return)
 * and development-mode leak warnings (a FinalizationRegistry over undisposed tensors).
 *
 * Scopes are tracked by time, not by async flow (browsers have no async context): while a scope
 * is open, every tensor the engine creates belongs to the innermost open scope. Nested scopes
 * close innermost first; scopes that close in any other order can only come from concurrent flows
 * sharing the engine, and then nothing of theirs is disposed (ScopeError).
 */
import { ScopeError } from './errors';
import { Tensor } from './tensor';

/** One open scope. */
interface Frame {
  readonly tensors: Set<Tensor>;
  /** Set when an overlapping scope was detected: this frame disposes nothing and throws on close. */
  overlapped: boolean;
}

/**
 * Leak warnings: off, on (the tensor's shape only: a registry entry, a few µs per tensor), or
 * `'trace'` (also the stack where each tensor was created: much slower to create tensors).
 */
export type LeakWarnings = boolean | 'trace';

/** What a leak warning says about a tensor: its shape and, when traced, where it was created. */
interface LeakInfo {
  readonly shape: readonly number[];
  /** The creation stack as text: an Error object would hold the frames' receivers, the tensor among them. */
  readonly site: string | undefined;
}

/** Objects whose closures hold values a scope must keep when the object is returned. */
const heldValues = new WeakMap<object, () => readonly unknown[]>();

/**
 * @internal Declares values (tensors, layers…) that `owner` uses without exposing them as
 * properties, e.g. a result's backward closure; a scope that returns `owner` keeps them too.
 */
export function holdValues(owner: object, values: () => readonly unknown[]): void {
  heldValues.set(owner, values);
}

/** Values a scope does not walk into: host data and GPU handles hold no tensors. */
function opaque(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Promise;
}

/** Whether `production` is what the bundler or Node says NODE_ENV is. */
function productionMode(): boolean {
  try {
    // Written out in full so bundlers that replace `process.env.NODE_ENV` replace it here too.
    return process.env.NODE_ENV === 'production';
  } catch {
    return false; // no `process` (a browser without a bundler's replacement)
  }
}

/** @internal The default of the `leakWarnings` engine option: on unless NODE_ENV is production. */
export const LEAK_WARNINGS_DEFAULT: boolean = !productionMode();

/** Frames of a creation stack the warning shows: enough to get past the library's own calls. */
const STACK_FRAMES = 24;

/**
 * The current stack as text, deep enough to reach the caller's code through the library's own
 * frames (V8 keeps 10 by default; other engines ignore `stackTraceLimit`).
 */
function creationStack(): string | undefined {
  const holder = Error as { stackTraceLimit?: number };
  const limit = holder.stackTraceLimit;
  holder.stackTraceLimit = STACK_FRAMES + 4;
  try {
    return new Error().stack;
  } finally {
    holder.stackTraceLimit = limit;
  }
}

/** @internal The scopes and leak registry of one engine. */
export class Lifetimes {
  private readonly frames: Frame[] = [];
  private readonly frameOf = new WeakMap<Tensor, Frame>();
  private readonly registry: FinalizationRegistry<LeakInfo> | undefined;
  private leaks = 0;
  private ended = false;

  /**
   * @param owner the engine, never walked when looking for returned tensors.
   * @param leakWarnings whether (and how) undisposed tensors that get garbage-collected are reported.
   */
  constructor(private readonly owner: object, private readonly leakWarnings: LeakWarnings) {
    this.registry = leakWarnings && typeof FinalizationRegistry !== 'undefined'
      ? new FinalizationRegistry((info) => this.leaked(info))
      : undefined;
  }

  /** Number of tensors reported as leaked so far (only with leak warnings on). */
  get leakCount(): number {
    return this.leaks;
  }

  /** A tensor was created: it joins the innermost open scope and, if it owns memory, the leak registry. */
  created(tensor: Tensor, owned: boolean): void {
    if (owned && this.registry) {
      const site = this.leakWarnings === 'trace' ? creationStack() : undefined;
      this.registry.register(tensor, { shape: tensor.shape, site }, tensor);
    }
    const frame = this.frames[this.frames.length - 1];
    if (frame) {
      frame.tensors.add(tensor);
      this.frameOf.set(tensor, frame);
    }
  }

  /** A tensor was disposed: nothing tracks it any more. */
  disposed(tensor: Tensor): void {
    this.registry?.unregister(tensor);
    this.release(tensor);
  }

  /** Takes `tensor` out of its scope (it will outlive it); returns it. */
  keep<T extends Tensor>(tensor: T): T {
    this.release(tensor);
    return tensor;
  }

  private release(tensor: Tensor): void {
    this.frameOf.get(tensor)?.tensors.delete(tensor);
    this.frameOf.delete(tensor);
  }

  /** The engine was destroyed: its memory is gone, so tensors collected from now on are no leaks. */
  end(): void {
    this.ended = true;
  }

  private leaked(info: LeakInfo): void {
    if (this.ended) return;
    this.leaks++;
    if (this.leaks > 1) return;
    // Lines 1–3 are this file, the engine and the Tensor constructor.
    const site = info.site === undefined
      ? "Create the engine with { leakWarnings: 'trace' } to see where leaked tensors are created."
      : `Created at:\n${info.site.split('\n').slice(4, 4 + STACK_FRAMES).join('\n')}`;
    console.warn(
      `anchorax: a tensor of shape [${info.shape.join(', ')}] was garbage-collected without dispose(), so its GPU ` +
        'buffer never went back to the engine\'s pool. Dispose tensors and results (or run the step in ' +
        'engine.scope). Further leaks of this engine are counted, not reported. ' +
        `Turn this off with { leakWarnings: false } or NODE_ENV=production. ${site}`,
    );
  }

  /** Runs `fn` in a new scope; see `Engine.scope`. */
  async scope<T>(fn: () => T | Promise<T>): Promise<T> {
    const frame: Frame = { tensors: new Set(), overlapped: false };
    this.frames.push(frame);
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      // fn failed: nothing is returned, so everything it made goes (unless scopes overlapped).
      if (this.close(frame)) this.disposeAll(frame, new Set());
      throw err;
    }
    if (!this.close(frame)) {
      throw new ScopeError(
        'engine.scope',
        'scopes of one engine closed out of order, so they overlapped in time (concurrent code, not nesting); ' +
          'scopes track tensors by time and cannot tell such flows apart, so nothing of theirs was disposed. ' +
          'Await each scope before opening the next, or nest them.',
      );
    }
    const kept = new Set<Tensor>();
    this.collect(result, kept, new Set());
    this.disposeAll(frame, kept);
    return result;
  }

  /**
   * Pops `frame`. Returns whether it closed in order (innermost open scope, no overlap seen);
   * otherwise marks every scope still open above it as overlapped and forgets its tensors.
   */
  private close(frame: Frame): boolean {
    const index = this.frames.lastIndexOf(frame);
    const inOrder = index === this.frames.length - 1 && !frame.overlapped;
    for (let i = index + 1; i < this.frames.length; i++) this.frames[i].overlapped = true;
    this.frames.splice(index, 1);
    if (!inOrder) for (const tensor of [...frame.tensors]) this.release(tensor);
    return inOrder;
  }

  /** Disposes the frame's tensors except `kept`, which move to the enclosing scope (if any). */
  private disposeAll(frame: Frame, kept: ReadonlySet<Tensor>): void {
    const parent = this.frames[this.frames.length - 1];
    for (const tensor of [...frame.tensors]) {
      if (!kept.has(tensor)) {
        tensor.dispose();
        continue;
      }
      this.release(tensor);
      if (parent) {
        parent.tensors.add(tensor);
        this.frameOf.set(tensor, parent);
      }
    }
  }

  /** Adds every tensor reachable from `value` through properties, elements and held values. */
  private collect(value: unknown, out: Set<Tensor>, seen: Set<object>): void {
    if (typeof value !== 'object' || value === null || seen.has(value) || value === this.owner) return;
    seen.add(value);
    if (value instanceof Tensor) {
      out.add(value);
      return;
    }
    if (opaque(value)) return;
    const items = value instanceof Map ? [...value.values()] : value instanceof Set ? [...value] : Object.values(value);
    for (const item of items) this.collect(item, out, seen);
    const held = heldValues.get(value);
    if (held) for (const item of held()) this.collect(item, out, seen);
  }
}
