/**
 * Solve programs, cached per configuration: what a solve builds before iterating — its SolveRun
 * (control block, partials, best iterate, the solver's scratch: rings, Anderson's history and
 * Gram matrix, Broyden's factors), its bind groups and pinned uniform buffers, the kernels and
 * paths it chose (its Plan). A configuration met again (a training loop's forward solves) takes
 * its program and goes straight to the first submit: no compile awaits, no allocation, no bind
 * group or uniform lookups.
 *
 * The rules: a program is kept from a configuration's second solve on (a one-off solve holds no
 * memory after it); only an idle program is handed out (concurrent solves of one configuration
 * each get their own); at most MAX_PROGRAMS programs and MAX_PROGRAM_BYTES of buffers are kept,
 * the least recently used idle one dropped first; a program is dropped when something it binds
 * goes away (a parameter disposed, a uniform buffer evicted from the engine's cache, the
 * layer disposed: {@link Engine.listen}) and all of them when the engine is destroyed. A kept
 * program's solves hand out copies of its best iterate (SolveRun.keep), so results stay valid
 * while the program is reused.
 */
import type { Engine } from '../engine';
import { bufferId } from '../gpu/kernel';
import type { ShaderName } from '../gpu/shaders';
import type { ImplicitLayer } from '../layers/layer';
import type { SolveResult } from '../results';
import { Tensor } from '../tensor';
import type { ResolvedOptions, SolverName, SolverOptions } from './options';
import { SolveRun, type Plan } from './run';

/** Programs an engine keeps at most. */
export const MAX_PROGRAMS = 8;
/** Bytes of buffers the kept programs of an engine hold at most (together). */
export const MAX_PROGRAM_BYTES = 256 * 2 ** 20;
/** Configurations remembered as seen once (so that their second solve keeps its program). */
const SEEN_KEYS = 64;

/**
 * The options that shape a program (all but u0, whose presence the key holds, and the noise
 * key, inference and timeoutMs, which each solve brings).
 */
const KEY_OPTIONS = [
  'eps', 'maxDepth', 'stopMode', 'returnFinal', 'returnB', 'lbfgsThres', 'ls', 'windowSize', 'reg', 'mixingParam',
  'restarting', 'trace', 'checkEvery', 'adaptiveChunks', 'stallSteps', 'overlap', 'fused', 'convergence',
] as const satisfies readonly (keyof ResolvedOptions)[];

/** One kept program. */
interface Program {
  readonly key: string;
  readonly run: SolveRun;
  readonly plan: Plan;
  /** A solve is running on it. */
  busy: boolean;
  /** Something it binds went away while it was busy: dropped when that solve ends. */
  stale: boolean;
  /** What it is watched for (see ProgramCache.gone). */
  watched: object[];
}

const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function objectId(thing: object): number {
  let id = objectIds.get(thing);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(thing, id);
  }
  return id;
}

/** @internal The programs of one engine. */
export class ProgramCache {
  /** Every kept program, least recently used first. */
  private readonly programs = new Set<Program>();
  /** Programs by what they bind (layer, buffers). */
  private readonly watchers = new Map<object, Set<Program>>();
  private readonly seen = new Map<string, true>();
  /** Key parts by layer, with the params object each was made from (see layerKey). */
  private readonly layerKeys = new WeakMap<ImplicitLayer, { params: object; key: string }>();
  private lastOptions?: { options: ResolvedOptions; key: string };
  private readonly unlisten: () => void;

  constructor(private readonly engine: Engine) {
    this.unlisten = engine.listen((gone) => this.gone(gone));
  }

  /** Number of kept programs (tests). */
  get size(): number {
    return this.programs.size;
  }

  /**
   * The key of a solve's configuration: the solver, the layer and the buffers it binds, Qd's
   * shape (not its buffer: see SolveRun.qdBuffer), the options that shape the program (not u0's buffer, the noise key,
   * inference or timeoutMs, which each solve brings), and the adapter kind the paths were chosen for.
   */
  keyOf(solver: SolverName, layer: ImplicitLayer, Qd: Tensor, o: ResolvedOptions): string | undefined {
    const layerKey = this.layerKey(layer);
    if (layerKey === undefined) return undefined;
    // Qd's last dimension is the layer's (checked): its rank and size give its shape.
    // Not Qd's buffer: a kept program binds its own copy of Qd (SolveRun.qdBuffer).
    return `${solver}|${layerKey}|${Qd.shape.length}:${Qd.size}|${o.u0 ? 1 : 0}|${this.engine.cpuAdapter ? 1 : 0}|${this.optionsKey(o)}`;
  }

  /** The layer's part of a key: its identity and its parameters' buffers (made once per layer and params object). */
  private layerKey(layer: ImplicitLayer): string | undefined {
    const params = layer.params;
    const known = this.layerKeys.get(layer);
    if (known?.params === params) return known.key;
    let key = `${objectId(layer)}`;
    for (const name in params) {
      const param: unknown = params[name];
      // Not a usable tensor: no key (the solve's checks then say which parameter, and how).
      if (!(param instanceof Tensor) || param.disposed) return undefined;
      key += `,${name}=${bufferId(param.buffer)}`;
    }
    // A parameter's buffer is its tensor's for life (a disposed one fails the checks before).
    this.layerKeys.set(layer, { params, key });
    return key;
  }

  /** The options' part of a key (the last one's, when they agree on every KEY_OPTIONS field). */
  private optionsKey(o: ResolvedOptions): string {
    const last = this.lastOptions;
    if (last && (last.options === o || KEY_OPTIONS.every((name) => last.options[name] === o[name]))) return last.key;
    const key = KEY_OPTIONS.map((name) => String(o[name])).join('|');
    this.lastOptions = { options: o, key };
    return key;
  }

  /** An idle program of `key`, now busy (most recently used), or undefined. */
  take(key: string): Program | undefined {
    for (const program of this.programs) {
      if (program.key !== key || program.busy) continue;
      program.busy = true;
      this.programs.delete(program);
      this.programs.add(program);
      return program;
    }
    return undefined;
  }

  /** Whether `key` was seen before (remembering it now): its solve then keeps its program. */
  repeated(key: string): boolean {
    const before = this.seen.delete(key);
    this.seen.set(key, true);
    if (this.seen.size > SEEN_KEYS) this.seen.delete(this.seen.keys().next().value as string);
    return before;
  }

  /** Adds a freshly built program, busy with its first solve. */
  add(key: string, run: SolveRun, plan: Plan): Program {
    const program: Program = { key, run, plan, busy: true, stale: false, watched: [] };
    this.programs.add(program);
    return program;
  }

  /**
   * A solve on `program` ended: it becomes idle (watched for what it binds now, within the
   * bounds), or is dropped when the solve failed or something it binds went away meanwhile.
   */
  done(program: Program, ok: boolean): void {
    program.busy = false;
    if (!ok || program.stale) {
      this.drop(program);
      return;
    }
    this.unwatch(program);
    const { run } = program;
    const params = run.layer.params;
    program.watched = [run.layer, ...Object.values(params).map((p) => p.buffer), ...run.uniforms];
    for (const thing of program.watched) {
      let set = this.watchers.get(thing);
      if (!set) this.watchers.set(thing, (set = new Set()));
      set.add(program);
    }
    this.trim();
  }

  /** Drops the least recently used idle programs past MAX_PROGRAMS or MAX_PROGRAM_BYTES. */
  private trim(): void {
    let bytes = 0;
    for (const program of this.programs) bytes += program.run.heldBytes;
    for (const program of [...this.programs]) {
      if (this.programs.size <= MAX_PROGRAMS && bytes <= MAX_PROGRAM_BYTES) return;
      if (program.busy) continue;
      bytes -= program.run.heldBytes;
      this.drop(program);
    }
  }

  private unwatch(program: Program): void {
    for (const thing of program.watched) {
      const set = this.watchers.get(thing);
      set?.delete(program);
      if (set?.size === 0) this.watchers.delete(thing);
    }
    program.watched = [];
  }

  private drop(program: Program): void {
    if (!this.programs.delete(program)) return;
    this.unwatch(program);
    program.run.dispose();
  }

  /** Something went away (Engine.listen): the programs that bind it go too (busy ones when done). */
  private gone(thing: object): void {
    if (thing === this.engine) {
      this.unlisten();
      caches.delete(this.engine);
      for (const program of [...this.programs]) this.drop(program);
      return;
    }
    const set = this.watchers.get(thing);
    if (!set) return;
    for (const program of [...set]) {
      if (program.busy) program.stale = true;
      else this.drop(program);
    }
  }
}

const caches = new WeakMap<Engine, ProgramCache>();

/** @internal The program cache of `engine` (made on first use). */
export function programCache(engine: Engine): ProgramCache {
  let cache = caches.get(engine);
  if (!cache) caches.set(engine, (cache = new ProgramCache(engine)));
  return cache;
}

/**
 * @internal A solve: checks its arguments, then runs the cached program of its configuration,
 * or builds one (`build`, after compiling `kernels`), kept when the configuration was seen
 * before. Per-sample convergence (`perSample`) builds its own, uncached.
 */
export async function solve(
  solver: SolverName,
  layer: ImplicitLayer,
  Qd: Tensor,
  options: SolverOptions | undefined,
  kernels: readonly ShaderName[],
  build: (run: SolveRun) => Promise<Plan>,
  perSample: (run: SolveRun) => Promise<SolveResult>,
): Promise<SolveResult> {
  const opts = SolveRun.checkCall(solver, layer, Qd, options);
  const engine = layer.engine;
  const cache = opts.convergence === 'batch' ? programCache(engine) : undefined;
  const key = cache?.keyOf(solver, layer, Qd, opts);
  const cached = key === undefined ? undefined : cache?.take(key);
  if (cache && cached) {
    // A failed check or solve drops the program (a disposed parameter would fail it every time).
    let ok = false;
    try {
      cached.run.rebind(Qd, opts);
      // The first submit: the start prepared at the end of the solve before (from zeros).
      if (!engine.wrapsPending) cached.run.startEarly();
      SolveRun.checkRest(solver, layer, Qd, opts);
      // A wrapped buffer's check may still be out: its answer decides whether Qd, u0 or a parameter is usable.
      if (engine.wrapsPending) {
        await engine.settleWraps();
        SolveRun.recheck(solver, layer, Qd, opts);
      }
      const result = await cached.run.execute(cached.plan);
      cached.run.prepareStart(cached.plan);
      ok = true;
      return result;
    } finally {
      cache.done(cached, ok);
    }
  }
  SolveRun.checkRest(solver, layer, Qd, opts);
  if (!cache) return perSample(await SolveRun.compile(solver, layer, Qd, opts, kernels));
  const keep = key !== undefined && cache.repeated(key);
  const run = await SolveRun.compile(solver, layer, Qd, opts, kernels);
  run.keep = keep;
  const plan = await build(run);
  if (!keep || key === undefined) return run.execute(plan);
  const program = cache.add(key, run, plan);
  let ok = false;
  try {
    const result = await run.execute(plan);
    run.prepareStart(plan);
    ok = true;
    return result;
  } finally {
    cache.done(program, ok);
  }
}
