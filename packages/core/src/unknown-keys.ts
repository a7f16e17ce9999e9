/**
 * Throws a TypeError for the first key of `options` that is not in `known`, naming it and
 * the nearest known key, so `httpTransport({ maxSocket: 8 })` fails at startup instead of
 * being ignored.
 *
 * @example
 * assertKnownKeys({ maxSocket: 8 }, ['maxSockets', 'idleTimeout'], 'httpTransport');
 * // TypeError: httpTransport: unknown option "maxSocket" (did you mean "maxSockets"?)
 */
export function assertKnownKeys(options: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    throw new TypeError(`${where}: unknown option "${key}" (did you mean "${nearestKey(key, known)}"?)`);
  }
}

/** The entry of `known` with the smallest edit distance to `key`, ignoring case. */
export function nearestKey(key: string, known: readonly string[]): string {
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

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
