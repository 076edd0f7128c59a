/**
 * Sleeping through a solve's GPU time where waiting keeps the host busy
 * (`Engine.spinsWhileWaiting`: Dawn in Node). From the moment a chunk's readback asks for its map
 * until the map settles, Dawn's Node binding polls for events on `setImmediate`. On a CPU adapter
 * that poll takes a core from the threads that run the kernels, and each poll allocates what the
 * next major collection frees in bulk; the first large allocation after that (a chunk's
 * `beginComputePass`) then pays for glibc's consolidation of those frees (docs/swiftshader-costs.md
 * has both measurements). So a chunk's readback is mapped only once most of the chunk's expected
 * GPU time has passed: SLEEP_SHARE of its iterate calls at the rate below, counted from when the
 * GPU can start it (its submit, or the chunk before it coming back), less TIMER_SLACK_MS for a
 * timer that fires late. Waits too short for a timer are not slept.
 *
 * Sleeping too little only polls longer; sleeping too long delays the solve (with `overlap` only
 * at its end: the chunk submitted ahead runs meanwhile). So the rate is the lowest of the last
 * RATE_WINDOW chunks that were still running when their maps were asked for: a slow chunk (a
 * collection, a busy machine, the polling itself slowing the kernels) does not make the next ones
 * sleep past the GPU, and a chunk measured low (from a late start, after a sleep that outlasted
 * the chunk before) ages out. Not measured are a run's first chunk (it pays for first uses: a new
 * program's buffers and bind groups, SwiftShader's compile at a pipeline's first dispatch) and a
 * chunk in which the solve ended (its last iterations are skipped on the GPU). A chunk that was
 * done before its map was asked for (it came back within CENSORED_MS) took at most its sleep: the
 * rates before it are dropped for CENSORED_SHARE of that bound, so that a sleep that outlasts the
 * GPU ends within a chunk or two.
 */
import type { Engine } from '../engine';

/** The share of a chunk's expected time slept through before its readback is mapped. */
export const SLEEP_SHARE = 0.9;
/** How late a timer may fire (Node's timers have millisecond granularity). */
export const TIMER_SLACK_MS = 2;
/** The shortest sleep worth a timer. */
export const MIN_SLEEP_MS = 4;
/** A map that settles this soon after it is asked for found the chunk done already. */
export const CENSORED_MS = 1;
/** The share of such a chunk's bound (its sleep) the next chunks are timed by. */
export const CENSORED_SHARE = 0.75;
/** The chunks whose rates the next chunks are timed by (the lowest of them). */
export const RATE_WINDOW = 3;

/** The two calls a chunk's readback makes: `settle` before its map, `back` when it arrived. */
export interface ChunkTiming {
  /** Engine.readBytes' settle: sleeps through the expected time, then the map is asked for. */
  readonly settle?: () => Promise<void>;
  /** The chunk's readback arrived (times the next chunks); `ended`: the solve ended in it. */
  back(ended: boolean): void;
}

/** @internal The pace of one SolveRun's chunks (a kept program keeps its rate between solves). */
export class ChunkPace {
  /** Milliseconds per iterate call on the GPU of the last chunks measured or bounded, oldest first. */
  private rates: number[] = [];
  /** Chunks that came back to this pace (its first is not measured). */
  private chunks = 0;
  /** When the chunk before came back in this solve (performance.now()). */
  private lastBack = -Infinity;
  /** Counts the solves begun: a chunk of a solve that has ended does not sleep. */
  private solves = 0;
  private running = false;
  /** The sleeps under way, each a wake-up that ends it now (see end). */
  private readonly sleeping = new Set<() => void>();
  private readonly enabled: boolean;

  constructor(engine: Pick<Engine, 'spinsWhileWaiting'>) {
    this.enabled = engine.spinsWhileWaiting;
  }

  /** A solve begins: none of its chunks came back yet. */
  begin(): void {
    this.lastBack = -Infinity;
    this.solves++;
    this.running = true;
  }

  /**
   * The solve is over: a chunk still in flight (submitted ahead) maps its readback now, so that
   * its staging buffer returns to the pool and no timer keeps the host's event loop alive.
   */
  end(): void {
    this.running = false;
    for (const wake of [...this.sleeping]) wake();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeping.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeping.add(wake);
    });
  }

  /** Milliseconds per iterate call the next chunk is timed by: the lowest of the rates (NaN: none). */
  get msPerCall(): number {
    return this.rates.length === 0 ? NaN : Math.min(...this.rates);
  }

  /** What the rate says to sleep for a chunk of `calls` the GPU can start at `start` (ms; 0: none). */
  sleepFor(calls: number, start: number, now: number): number {
    const ms = start + SLEEP_SHARE * calls * this.msPerCall - TIMER_SLACK_MS - now;
    return ms >= MIN_SLEEP_MS ? ms : 0;
  }

  /**
   * The timing of a chunk of `calls` iterate calls, submitted now; `before`, the readback of the
   * chunk submitted before it while that one is still in flight (its arrival is when the GPU can
   * start this one).
   */
  chunk(calls: number, before?: Promise<unknown>): ChunkTiming {
    const submitted = performance.now();
    const solve = this.solves;
    let start = submitted;
    /** When the map was asked for after a sleep (NaN: no sleep). */
    let woke = NaN;
    const back = (ended: boolean): void => {
      // A chunk that was in flight when its solve ended ran as no-ops: it says nothing of the rate.
      if (!this.running || solve !== this.solves) return;
      const now = performance.now();
      this.lastBack = now;
      if (this.chunks++ === 0 || ended || calls === 0) return;
      // Done before its map was asked for: it took at most the sleep, perhaps much less.
      if (now - woke < CENSORED_MS) this.rates = [(CENSORED_SHARE * (woke - start)) / calls];
      else this.rates = [...this.rates, (now - start) / calls].slice(-RATE_WINDOW);
    };
    if (!this.enabled) return { back };
    const settle = async (): Promise<void> => {
      if (before) await before.catch(() => undefined);
      if (!this.running || solve !== this.solves) return;
      start = Math.max(submitted, this.lastBack);
      const ms = this.sleepFor(calls, start, performance.now());
      if (ms > 0) {
        await this.sleep(ms);
        woke = performance.now();
      }
    };
    return { settle, back };
  }
}
