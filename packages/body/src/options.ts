// Option checks shared by the stages of this package: each throws a TypeError or RangeError that
// names the stage and the option, when the factory is called.

/**
 * Throws when `options` has a key outside `known`, naming it and the nearest valid key.
 *
 * @example
 * assertKnownKeys({ maxByte: 1 }, ['maxBytes', 'types'], 'bodyLimit'); // TypeError: … did you mean "maxBytes"?
 */
export function assertKnownKeys(options: object, known: readonly string[], stage: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`${stage}: unknown option "${key}" (did you mean "${nearest(key, known)}"? expected one of ${known.join(', ')})`);
    }
  }
}

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

/** The key of `known` closest to `key` by edit distance (case-insensitive). */
function nearest(key: string, known: readonly string[]): string {
  let best = known[0] ?? '';
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = current;
  }
  return previous[b.length]!;
}
