// What error tests share: catching a throw or a rejection (a hang becomes a failure), and
// checking an error's class and the argument it names.
import { expect } from 'vitest';
import { anderson, broyden, picard, type AnchoraxError, type ImplicitLayer, type SolveResult, type SolverOptions, type Tensor } from '../../src';

export type Solver = (f: ImplicitLayer, Qd: Tensor, options?: SolverOptions) => Promise<SolveResult>;

/** The three solvers, by name (for `describe.each` / `it.each`). */
export const SOLVERS: [string, Solver][] = [
  ['picard', picard],
  ['anderson', anderson],
  ['broyden', broyden],
];

export type ErrorClass = new (argument: string, message: string) => AnchoraxError;

/** GPUBufferUsage values (Dawn for Node defines no globals). */
export const Usage = { MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 } as const;

/** A call that takes longer than this is taken for a hang. */
export const HANG_MS = 20_000;

/** The error `fn` throws (fails the test when it throws nothing). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, but none was thrown');
}

/** Rejects after `ms`: a hang becomes a failure with a message instead of a test timeout. */
export function withinTime<T>(promise: Promise<T>, ms = HANG_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer after ${ms} ms (hang)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The reason `promise` rejects with (fails the test when it resolves, or hangs). */
export async function rejection(promise: Promise<unknown>, ms = HANG_MS): Promise<unknown> {
  try {
    await withinTime(promise, ms);
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `err` is a `type` naming `argument`, its message starting with the argument. */
export function expectTyped(err: unknown, type: ErrorClass, argument: string): void {
  expect(err).toBeInstanceOf(type);
  expect((err as AnchoraxError).argument).toBe(argument);
  expect((err as AnchoraxError).message.startsWith(`${argument}: `)).toBe(true);
}
