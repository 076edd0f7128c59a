// Shared expectations of the error tests: what a call throws or a promise rejects with, and
// whether it is the typed error naming the right argument.
import { expect } from 'vitest';
import type { AnchoraxError } from '../../src';

export type ErrorClass = new (argument: string, message: string) => AnchoraxError;

/** The error `fn` throws (fails the test when it throws nothing). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, but none was thrown');
}

/** The reason `promise` rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** `err` is a `type` whose argument is `argument`, and its message starts with it. */
export function expectTyped(err: unknown, type: ErrorClass, argument: string): void {
  expect(err).toBeInstanceOf(type);
  expect((err as AnchoraxError).argument).toBe(argument);
  expect((err as AnchoraxError).message.startsWith(`${argument}: `)).toBe(true);
}
