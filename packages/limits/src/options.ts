/** The one unknown-key check every Relay package uses (names the key and the nearest valid one). */
export { assertKnownKeys } from '@relay/core';

/** Checks an options argument is a plain object. */
export function assertOptionsObject(value: unknown, owner: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${owner}(options) needs an options object`);
  }
}

/** Checks a positive finite number (a count or a duration in ms). */
export function assertPositive(value: unknown, option: string): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${option} must be a number, got ${typeof value}`);
  // NaN is a number to typeof: it gets the range message, which names it ("got NaN"), as Infinity does.
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${option} must be a finite number > 0, got ${value}`);
}

/** Checks a positive integer. */
export function assertPositiveInteger(value: unknown, option: string): asserts value is number {
  assertPositive(value, option);
  if (!Number.isInteger(value)) throw new RangeError(`${option} must be a whole number, got ${value}`);
}

/** Checks an optional boolean and returns it or the default. */
export function readBoolean(value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${option} must be true or false, got ${typeof value}`);
  return value;
}

/**
 * Checks a limit's name: it is the policy name in the `RateLimit` headers (a structured-field
 * string) and part of every store key, so it stays short and plain.
 */
export function readName(value: unknown, option: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(value)) {
    throw new TypeError(`${option} must be 1 to 64 letters, digits or _ . : -, got ${JSON.stringify(value)}`);
  }
  return value;
}
