/**
 * Throws a TypeError naming the first key of `value` outside `known` and the nearest valid one:
 * `rateLimit: unknown option "point" (did you mean "points"? expected one of …)`. The same
 * signature and message as the `assertKnownKeys` being added to `@relay/core`: once core exports
 * it, import it from there and delete this one.
 *
 * @example
 * assertKnownKeys({ point: 5 }, ['points', 'duration'], 'rateLimit');
 */
export function assertKnownKeys(value: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const nearest = nearestName(key, known);
    const hint = nearest === null ? '' : `did you mean "${nearest}"? `;
    throw new TypeError(`${where}: unknown option "${key}" (${hint}expected one of ${known.join(', ')})`);
  }
}

/** The known name closest to `name` (case-insensitive edit distance), or `null` when more than half of it differs. */
function nearestName(name: string, known: readonly string[]): string | null {
  const lower = name.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.ceil(name.length / 2)) ? best : null;
}

/** Levenshtein distance, one row at a time: option names are short and this runs at startup only. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Checks an options argument is a plain object. */
export function assertOptionsObject(value: unknown, owner: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${owner}(options) needs an options object`);
  }
}

/** Checks a positive finite number (a count or a duration in ms). */
export function assertPositive(value: unknown, option: string): asserts value is number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${option} must be a number, got ${typeof value}`);
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
