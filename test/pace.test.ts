// The pace of a solve's readbacks (src/solvers/pace.ts): where waiting on a map keeps the host
// busy (Dawn in Node), a chunk's readback is mapped only after most of its expected GPU time.
import { performance as nodePerformance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { implicitBlock, picard, type Engine } from '../src';
import { CENSORED_MS, CENSORED_SHARE, ChunkPace, MIN_SLEEP_MS, SLEEP_SHARE, TIMER_SLACK_MS } from '../src/solvers/pace';
import { createTestEngine, randomArray, rng } from './helpers/engine';

const spinning = { spinsWhileWaiting: true };

/** Whether `promise` has settled once the timers due by now have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

/** That `waiting` settles `ms` from now (fake timers), not a millisecond sooner. */
async function expectSleep(waiting: Promise<unknown>, ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms - 1);
  expect(await settled(waiting)).toBe(false);
  await vi.advanceTimersByTimeAsync(1);
  expect(await settled(waiting)).toBe(true);
}

/** A chunk's settle (enabled paces always give one). */
function settleOf(timing: { settle?: () => Promise<void> }): Promise<void> {
  return timing.settle?.() ?? Promise.reject(new Error('no settle'));
}

/**
 * A pace whose solve has begun, whose first chunk came back (not measured), and whose second, 10
 * calls, came back 100 ms after it (fake timers): 10 ms a call.
 */
async function paceAt10msPerCall(): Promise<ChunkPace> {
  const pace = new ChunkPace(spinning);
  pace.begin();
  const first = pace.chunk(10);
  await settleOf(first);
  await vi.advanceTimersByTimeAsync(50);
  first.back(false);
  const second = pace.chunk(10);
  // No rate yet: its map is asked for at once.
  expect(await settled(settleOf(second))).toBe(true);
  await vi.advanceTimersByTimeAsync(100);
  second.back(false);
  return pace;
}

describe('ChunkPace', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sleeps SLEEP_SHARE of a chunk at the rate measured, less the timer slack, and nothing below MIN_SLEEP_MS', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const pace = await paceAt10msPerCall();
    await expectSleep(settleOf(pace.chunk(20)), SLEEP_SHARE * 20 * 10 - TIMER_SLACK_MS);
    // One call (10 ms) started now: 0.9 × 10 − 2 = 7 ms. Started so long ago that MIN_SLEEP_MS − 0.5 ms are left: none.
    const now = performance.now();
    expect(pace.sleepFor(1, now, now)).toBeCloseTo(SLEEP_SHARE * 10 - TIMER_SLACK_MS, 9);
    expect(pace.sleepFor(1, now - (SLEEP_SHARE * 10 - TIMER_SLACK_MS - MIN_SLEEP_MS + 0.5), now)).toBe(0);
  });

  it('times a chunk submitted ahead from the arrival of the one before it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const pace = await paceAt10msPerCall();
    // Submitted while nothing runs (its settle, a sleep of 88 ms, is not run here).
    const third = pace.chunk(10);
    let arrive: () => void = () => undefined;
    const thirdBack = new Promise<void>((resolve) => (arrive = resolve));
    // The fourth is submitted while the third runs: its wait counts from the third's arrival.
    const fourth = pace.chunk(10, thirdBack);
    const waiting = settleOf(fourth);
    await vi.advanceTimersByTimeAsync(80);
    expect(await settled(waiting)).toBe(false);
    third.back(false); // 10 calls in 80 ms: 8 ms a call
    arrive();
    await expectSleep(waiting, SLEEP_SHARE * 10 * 8 - TIMER_SLACK_MS);
  });

  it('times by the lowest of the last three rates (a slow chunk does not raise it until the fast one ages out); a chunk done before its map was asked for bounds it; a chunk the solve ended in is not measured', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const pace = await paceAt10msPerCall();
    const sleepOf10 = (): number => pace.sleepFor(10, performance.now(), performance.now());
    const at10 = SLEEP_SHARE * 100 - TIMER_SLACK_MS;
    // Slept as the rate says, then polled 50 ms more: a slower chunk.
    const slowChunk = async (sleep: number): Promise<void> => {
      const slow = pace.chunk(10);
      await expectSleep(settleOf(slow), sleep);
      await vi.advanceTimersByTimeAsync(50);
      slow.back(false);
    };
    // 13.8 ms a call twice: the lowest of (10, 13.8, 13.8) is still 10.
    await slowChunk(at10);
    await slowChunk(at10);
    expect(sleepOf10()).toBeCloseTo(at10, 9);
    // A third: 10 ages out.
    await slowChunk(at10);
    const polled = (at10 + 50) / 10;
    const slept = SLEEP_SHARE * 10 * polled - TIMER_SLACK_MS;
    expect(sleepOf10()).toBeCloseTo(slept, 9);
    // Back half a millisecond after its sleep: done before its map was asked for, so at most the sleep.
    const early = pace.chunk(10);
    await expectSleep(settleOf(early), slept);
    await vi.advanceTimersByTimeAsync(CENSORED_MS / 2);
    early.back(false);
    const bounded = (CENSORED_SHARE * slept) / 10;
    expect(sleepOf10()).toBeCloseTo(SLEEP_SHARE * 10 * bounded - TIMER_SLACK_MS, 9);
    // The solve ended in this one (its last iterations were skipped): no measurement.
    const last = pace.chunk(10);
    const lastSettled = settleOf(last);
    await vi.advanceTimersByTimeAsync(100);
    await lastSettled;
    last.back(true);
    expect(sleepOf10()).toBeCloseTo(SLEEP_SHARE * 10 * bounded - TIMER_SLACK_MS, 9);
  });

  it('wakes a sleeping chunk when its solve ends, and takes no rate from a chunk that came back after it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const pace = await paceAt10msPerCall();
    const ahead = pace.chunk(10);
    const waiting = settleOf(ahead);
    expect(await settled(waiting)).toBe(false);
    pace.end();
    expect(await settled(waiting)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    // It arrives later as no-ops (here, at once: as fast as a chunk can be): the rate stays 10 ms per call.
    ahead.back(false);
    expect(pace.sleepFor(10, performance.now(), performance.now())).toBeCloseTo(SLEEP_SHARE * 100 - TIMER_SLACK_MS, 9);
    // A chunk of an ended solve does not sleep either.
    expect(await settled(settleOf(pace.chunk(10)))).toBe(true);
  });

  it('does nothing where waiting does not spin (a browser)', () => {
    const pace = new ChunkPace({ spinsWhileWaiting: false });
    pace.begin();
    expect(pace.chunk(10).settle).toBeUndefined();
  });
});

describe('a paced solve on this host', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createTestEngine();
  });
  afterAll(() => engine?.destroy());

  it('leaves the event loop idle through most of a long chunked solve, and finds what an unpaced solve finds', async () => {
    expect(engine.spinsWhileWaiting).toBe(true);
    const d = 64;
    const batch = 32;
    const random = rng(11);
    const f = implicitBlock(engine, { weight: Float32Array.from(randomArray(random, d * d, 0.1)), bias: new Float32Array(d) });
    const q = engine.tensor(Float32Array.from(randomArray(random, batch * d, 1)), [batch, d]);
    const options = { eps: 0, maxDepth: 1024, checkEvery: 64 };
    (await picard(f, q, { ...options, maxDepth: 8 })).dispose(); // compiles
    const solve = async (): Promise<{ utilization: number; u: Float32Array }> => {
      const before = nodePerformance.eventLoopUtilization();
      const result = await picard(f, q, options);
      const { utilization } = nodePerformance.eventLoopUtilization(before);
      const u = await result.uStar.read();
      result.dispose();
      return { utilization, u };
    };
    const paced = await solve();
    // The same solve with the pace off (a program of its own: the pace is made with the run).
    Object.defineProperty(engine, 'spinsWhileWaiting', { value: false, configurable: true });
    let unpaced: { utilization: number; u: Float32Array };
    try {
      unpaced = await solve();
    } finally {
      delete (engine as unknown as Record<string, unknown>).spinsWhileWaiting;
    }
    // Unpaced, Dawn polls for each map on setImmediate from the submit on: the loop never idles.
    expect(unpaced.utilization).toBeGreaterThan(0.9);
    // Paced, only the first two chunks and the last tenth of each chunk after them poll.
    // (0.31–0.41 measured alone, 0.37–0.38 beside another such process on 2 cores.)
    expect(paced.utilization).toBeLessThan(0.6);
    expect(paced.u).toEqual(unpaced.u);
    q.dispose();
    f.dispose();
  });
});
