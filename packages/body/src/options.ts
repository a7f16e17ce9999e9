// Option checks shared by the stages of this package: each throws a TypeError or RangeError that
// names the stage and the option, when the factory is called.

// One check for every options object of Relay: core's, which names the nearest valid key.
export { assertKnownKeys } from '@relay/core';

/**
 * The option `options` must be an object (or absent); returns it or `{}`.
 *
 * @example
 * const checked = optionsObject(options, 'compress');
 */
export function optionsObject<T extends object>(options: T | undefined, stage: string): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${stage}(options) needs an options object`);
  return options;
}

/**
 * A whole number of bytes ≥ 0, or `Infinity` for no limit.
 *
 * @example
 * const limit = checkBytes(options.maxBytes ?? 1024, 'bodyLimit: maxBytes');
 */
export function checkBytes(value: unknown, option: string): number {
  if (value === Infinity || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) return value;
  throw new RangeError(`${option} must be a whole number of bytes ≥ 0 (or Infinity), got ${String(value)}`);
}

/**
 * A whole number within `min`..`max`.
 *
 * @example
 * checkInteger(6, 'compress: gzipLevel', 1, 9);
 */
export function checkInteger(value: unknown, option: string, min: number, max: number): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  throw new RangeError(`${option} must be a whole number from ${min} to ${max}, got ${String(value)}`);
}

/**
 * A function.
 *
 * @example
 * checkFunction(fn, 'transformResponse: the transform');
 */
export function checkFunction<T>(value: T, option: string): T {
  if (typeof value !== 'function') throw new TypeError(`${option} must be a function, got ${value === null ? 'null' : typeof value}`);
  return value;
}

/**
 * One of `allowed`.
 *
 * @example
 * checkChoice('json', ['text', 'json', 'bytes'], 'transformResponse: as');
 */
export function checkChoice<T extends string>(value: unknown, allowed: readonly T[], option: string): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new RangeError(`${option} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(value)}`);
}
