/** How the wait before each retry grows: built once from the stage's options. */
export interface Backoff {
  /** Milliseconds waited before the first retry; doubled for each retry after it. */
  readonly factor: number;
  /** The longest wait, in milliseconds, before jitter. */
  readonly max: number;
  /** Full jitter: wait a random time between 0 and the computed delay. */
  readonly jitter: boolean;
}

/**
 * The wait before retry number `retry` (1 for the first retry): `factor * 2^(retry - 1)`, capped at
 * `max`, then with full jitter a random whole number of milliseconds between 0 and that.
 *
 * @example
 * backoffDelay(3, { factor: 200, max: 10_000, jitter: false }); // 800
 */
export function backoffDelay(retry: number, backoff: Backoff, random: () => number = Math.random): number {
  const exponential = backoff.factor * 2 ** (retry - 1);
  const capped = exponential < backoff.max ? exponential : backoff.max;
  return backoff.jitter ? Math.round(random() * capped) : capped;
}
