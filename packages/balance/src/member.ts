import type { Target } from '@relay/core';

/** What `pool.targets()` tells about one target. */
export interface TargetState {
  /** The target's URL (for a DNS target, one of its addresses). */
  readonly url: string;
  readonly weight: number;
  /** Attempts in progress (until their response body is sent or dropped; a WebSocket session until it closes). */
  readonly inFlight: number;
  /** Attempts waiting for a free slot (circuit breaking). */
  readonly pending: number;
  /** The active health checks' verdict (`true` without health checks). */
  readonly healthy: boolean;
  /** Ejected by the outlier detection until `ejectedUntil` (a `Date.now()` time), else 0. */
  readonly ejectedUntil: number;
  /** Ejections so far (the next one lasts one base time longer). */
  readonly ejections: number;
  /**
   * When its last ejection started (a `Date.now()` time), kept after the ejection ended; 0 if never
   * ejected. `ejections` starts over once the target has stayed in for a whole `maxEjectionTime` after it.
   */
  readonly lastEjectionAt: number;
  /** Failures in a row counted by the outlier detection. */
  readonly consecutiveFailures: number;
  /** At its circuit's `maxRequests`: a new attempt waits or is refused (`false` without circuit breaking). */
  readonly circuitOpen: boolean;
  /** For an address of a `{ dns }` target: that target's `dns` (its origin, `http://app.internal:8000`); absent for a URL target. */
  readonly dns?: string;
}

/**
 * One target of a pool and its state. The same object lives across `setTargets` calls that keep
 * its URL; an attempt in flight holds the `Target` it was given even when its member is removed.
 */
export class Member {
  inFlight = 0;
  /** Resolvers of the attempts waiting for a slot, oldest first. */
  readonly waiting: Array<() => void> = [];
  healthy = true;
  /** Passing (positive) or failing (negative) health checks in a row. */
  checks = 0;
  ejectedUntil = 0;
  ejections = 0;
  /** When the last ejection started (0: never); `countFailure` starts the count over from it. */
  lastEjection = 0;
  failures = 0;
  /** When a circuit refusal of this target was last logged. */
  lastRefusalLog = 0;
  /** Smooth weighted round robin's running weight. */
  current = 0;
  /** A per-target seed for rendezvous hashing. */
  readonly seed: number;

  constructor(
    readonly url: string,
    public weight: number,
    readonly target: Target,
    /** The DNS spec it came from, or `null` for a static target. */
    readonly source: string | null,
  ) {
    this.seed = fnv1a(url, 0x811c9dc5);
  }

  /** Whether the outlier detection keeps it out right now. */
  ejected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  /** Its state; `maxRequests` is the circuit's limit (`Infinity` without circuit breaking). */
  state(maxRequests: number): TargetState {
    return {
      url: this.url,
      weight: this.weight,
      inFlight: this.inFlight,
      pending: this.waiting.length,
      healthy: this.healthy,
      ejectedUntil: this.ejectedUntil > Date.now() ? this.ejectedUntil : 0,
      ejections: this.ejections,
      lastEjectionAt: this.lastEjection,
      consecutiveFailures: this.failures,
      circuitOpen: this.inFlight >= maxRequests,
      ...(this.source === null ? {} : { dns: this.source }),
    };
  }
}

/** 32-bit FNV-1a of a string, from `seed`: fast, and spreads short keys well enough for balancing. */
export function fnv1a(text: string, seed: number): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
