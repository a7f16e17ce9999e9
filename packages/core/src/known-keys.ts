/**
 * Throws a TypeError when `options` has a key outside `known`, naming the key and the nearest
 * valid one: `createRelay: unknown option "mountpath" (did you mean "mountPath"? expected one of …)`.
 * Every options object of Relay and its stages is checked with it, so a misspelled key never
 * passes silently.
 *
 * @example
 * assertKnownKeys({ maxRetry: 3 }, ['maxRetries', 'statuses'], 'retry');
 * // TypeError: retry: unknown option "maxRetry" (did you mean "maxRetries"? expected one of maxRetries, statuses)
 */
export function assertKnownKeys(options: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const nearest = nearestName(key, known);
    const hint = nearest === null ? '' : `did you mean "${nearest}"? `;
    throw new TypeError(`${where}: unknown option "${key}" (${hint}expected one of ${known.join(', ')})`);
  }
}

/**
 * The name of `known` closest to `name` (case-insensitive edit distance), or `null` when none is
 * close enough to be a likely misspelling (more than half of the name changed).
 *
 * @example
 * nearestName('mountpath', ['mountPath', 'timeout']); // 'mountPath'
 */
export function nearestName(name: string, known: readonly string[]): string | null {
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
