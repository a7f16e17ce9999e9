/**
 * Throws a TypeError naming the first key of `value` that is not in `known`, and the known key
 * nearest to it (a typo such as `point` names `points`).
 *
 * @example
 * assertKnownKeys({ point: 5 }, ['points', 'duration'], 'rateLimit'); // TypeError: rateLimit: unknown option "point" (did you mean "points"?)
 */
export function assertKnownKeys(value: object, known: readonly string[], owner: string): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const nearest = nearestName(key, known);
    const hint = nearest === null ? `expected one of ${known.join(', ')}` : `did you mean "${nearest}"?`;
    throw new TypeError(`${owner}: unknown option "${key}" (${hint})`);
  }
}

/** The known name within edit distance 3 of `name` (the closest one), or `null`. */
function nearestName(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 4;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
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
