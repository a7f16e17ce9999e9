/**
 * Option checks shared by the factories of this package: unknown keys name the nearest valid one,
 * bad values name the option.
 */
import { assertKnownKeys } from '@relay/core';

/**
 * Checks that `value` is an options object whose keys are all in `known`; the error names the
 * unknown key and the nearest valid one.
 */
export function checkOptions(value: unknown, known: readonly string[], factory: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${factory} needs an options object`);
  assertKnownKeys(value, known, factory);
  return value as Record<string, unknown>;
}

/** Checks an optional boolean option. */
export function readBoolean(value: unknown, fallback: boolean, option: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${option} must be a boolean, got ${typeof value}`);
  return value;
}

/** Checks an optional string option against a set of choices. */
export function readChoice<T extends string>(value: unknown, choices: readonly T[], fallback: T, option: string): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw new TypeError(`${option} must be one of ${choices.map((choice) => `"${choice}"`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Checks an optional non-empty string option. */
export function readString(value: unknown, fallback: string, option: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') throw new TypeError(`${option} must be a non-empty string`);
  return value;
}

/** Checks an optional list of strings; lowercased when `lower`. */
export function readStringList(value: unknown, fallback: readonly string[], option: string, lower: boolean): string[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value)) throw new TypeError(`${option} must be an array of strings`);
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string' || item === '') throw new TypeError(`${option}[${index}] must be a non-empty string`);
    return lower ? item.toLowerCase() : item;
  });
}

/** Checks an optional list of histogram bucket bounds: finite, positive, increasing. */
export function readBuckets(value: unknown, fallback: readonly number[], option: string): number[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(`${option} must be a non-empty array of seconds`);
  value.forEach((bound: unknown, index) => {
    if (typeof bound !== 'number' || !Number.isFinite(bound) || bound <= 0) {
      throw new RangeError(`${option}[${index}] must be a finite number of seconds > 0, got ${String(bound)}`);
    }
    if (index > 0 && bound <= (value[index - 1] as number)) throw new RangeError(`${option} must be in increasing order`);
  });
  return [...(value as number[])];
}
