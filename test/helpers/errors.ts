// Shared helpers of the bad-input tests: the error a call throws or a promise rejects with, and
// the check that it is typed and names the argument.
import { expect } from 'vitest';
import type { AnchoraxError } from '../../src';

export type ErrorClass = new (argument: string, message: string) => AnchoraxError;

/** A solve that takes longer than this is taken for a hang. */
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

/** The reason `promise` rejects with (fails the test when it resolves, or hangs past `ms`). */
export async function rejection(promise: Promise<unknown>, ms = HANG_MS): Promise<unknown> {
  try {
    await withinTime(promise, ms);
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** Expects `err` to be a `type` whose `argument` (and message prefix) is `argument`. */
export function expectTyped(err: unknown, type: ErrorClass, argument: string): void {
  expect(err).toBeInstanceOf(type);
  expect((err as AnchoraxError).argument).toBe(argument);
  expect((err as AnchoraxError).message.startsWith(`${argument}: `)).toBe(true);
}
