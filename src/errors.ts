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
    this.name = new.target.name;
    this.argument = argument;
  }
}

/** A tensor has the wrong shape, or two tensors disagree. */
export class ShapeError extends AnchoraxError {}

/** Input data holds NaN or ±Infinity. */
export class NonFiniteError extends AnchoraxError {}

/** An option is unknown, of the wrong type, or out of range. */
export class OptionError extends AnchoraxError {}

/** A tensor or result was used after `dispose()`. */
export class DisposedError extends AnchoraxError {}

/** A tensor belongs to a different engine (device) than the one asked to use it. */
export class EngineMismatchError extends AnchoraxError {}

/** The problem does not fit the adapter's limits (buffer size, workgroups). */
export class LimitError extends AnchoraxError {}

/** The GPU device was lost (driver reset, `destroy()`, tab backgrounded too long...). */
export class DeviceLostError extends AnchoraxError {}

/**
 * The GPU rejected work a call submitted (a WebGPU validation error): typically a wrapped buffer
 * that was destroyed, belongs to another GPUDevice, or lacks a usage the call needs. `argument`
 * names the call (`'broyden'`, `'backward'`, `'mse'`…); the message carries the device's own text.
 * Nothing the call computed is returned.
 */
export class GpuValidationError extends AnchoraxError {}

/** No WebGPU adapter could be found; the message says what to install. */
export class NoAdapterError extends AnchoraxError {}
