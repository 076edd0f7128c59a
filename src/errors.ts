/**
 * Typed errors. Every error names the argument (or option) that caused it, so callers can
 * branch on `instanceof` and users can read what to fix.
 */

/** Base class of every error this library throws. */
export class AnchoraxError extends Error {
  /** The argument or option at fault, e.g. `"Qd"` or `"options.windowSize"`. */
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`${argument}: ${message}`);
    // The library's subclasses also set `name` as a literal (below), which survives an app's
    // minifier; new.target.name covers subclasses without one.
    this.name = new.target === AnchoraxError ? 'AnchoraxError' : new.target.name;
    this.argument = argument;
  }
}

/** A tensor has the wrong shape, or two tensors disagree. */
export class ShapeError extends AnchoraxError { override name = 'ShapeError'; }

/** Input data holds NaN or ±Infinity. */
export class NonFiniteError extends AnchoraxError { override name = 'NonFiniteError'; }

/** An option is unknown, of the wrong type, or out of range. */
export class OptionError extends AnchoraxError { override name = 'OptionError'; }

/** A tensor or result was used after `dispose()`. */
export class DisposedError extends AnchoraxError { override name = 'DisposedError'; }

/** A tensor belongs to a different engine (device) than the one asked to use it. */
export class EngineMismatchError extends AnchoraxError { override name = 'EngineMismatchError'; }

/** The problem does not fit the adapter's limits (buffer size, workgroups). */
export class LimitError extends AnchoraxError { override name = 'LimitError'; }

/** The GPU device was lost (driver reset, `destroy()`, tab backgrounded too long...). */
export class DeviceLostError extends AnchoraxError { override name = 'DeviceLostError'; }

/** No WebGPU adapter could be found; the message says what to do (in Node: what to install; in a browser: what to enable). */
export class NoAdapterError extends AnchoraxError { override name = 'NoAdapterError'; }

/** A file or byte source is unreadable or malformed (e.g. a truncated or corrupt safetensors file). */
export class FormatError extends AnchoraxError { override name = 'FormatError'; }

/** `engine.scope` was misused: scopes on one engine closed out of order (overlapping, not nested). */
export class ScopeError extends AnchoraxError { override name = 'ScopeError'; }

/**
 * GPU work ran past its time limit (`options.timeoutMs`). The work cannot be cancelled, so the
 * engine is unusable afterwards: every later call on it throws DeviceLostError saying so.
 */
export class TimeoutError extends AnchoraxError { override name = 'TimeoutError'; }

/**
 * An iterative solve the result depends on did not converge, and the caller asked for an error
 * rather than an approximation (e.g. IFT's adjoint solve with `onUnconverged: 'throw'`).
 */
export class ConvergenceError extends AnchoraxError { override name = 'ConvergenceError'; }

/**
 * The GPU rejected work a call submitted (a WebGPU validation error): typically a wrapped buffer
 * that was destroyed, belongs to another GPUDevice, or lacks a usage the call needs. `argument`
 * names the call (`'broyden'`, `'backward'`, `'mse'`…); the message carries the device's own text.
 * Nothing the call computed is returned.
 */
export class GpuValidationError extends AnchoraxError { override name = 'GpuValidationError'; }
