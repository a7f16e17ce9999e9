import type { RelayError } from '../errors.js';
import type { ProxyRequest } from '../types.js';
import type { ClientInfo } from './client.js';

/**
 * A stage's bound on the upstream attempts it sends (one `retry()` run's deadline), carried by each
 * of them as `request.bound`. `cut(reason)` ends those attempts and no others, leaving the client in
 * place so the stages outside can still answer (or try again with attempts of their own): the one
 * in flight at its transport fails with `reason` at once, and one still held in an inner stage
 * fails with it when it reaches its transport, before any byte is sent. A bound made for an attempt
 * that carries a bound already is within it: cutting the outer one cuts the inner one's attempts too.
 *
 * The bound lives on the attempt, not on the client, because one client request can see several
 * runs: a stage outside `retry()` that tries again after its 504 sends attempts of a new run, which
 * a cut of the old run (whose attempt may still be held in an inner stage) must never reach.
 *
 * @example
 * const bound = new AttemptBound(request);
 * const timer = setTimeout(() => bound.cut(new RelayError('ERR_DEADLINE', 'no response head within 5000 ms')), 5_000);
 * try {
 *   return await next({ ...request, bound });
 * } finally {
 *   clearTimeout(timer);
 * }
 */
export class AttemptBound {
  private readonly client: ClientInfo;
  /** The bound of the request this one's attempts are made for, whose cut reaches them too. */
  private readonly within: AttemptBound | null;
  private cutReason: RelayError | null = null;
  private stoppedInFlight = false;

  /** A bound for attempts made for `request` (within `request.bound`, when it has one). */
  constructor(request: ProxyRequest) {
    this.client = request.client;
    this.within = request.bound ?? null;
  }

  /** Why this bound's attempts were cut (by it, or by a bound it is within); `null` while they were not. */
  get reason(): RelayError | null {
    const cutter = this.cutter();
    return cutter === null ? null : cutter.cutReason;
  }

  /**
   * True when the cut stopped an attempt where it was registered (`client.setAbortHandler`: in flight
   * at its transport, or in a stage's wait for it), false when no attempt of the bound was there:
   * one cut before it reached its transport is never sent, and says nothing about its target.
   */
  get cutInFlight(): boolean {
    const cutter = this.cutter();
    return cutter !== null && cutter.stoppedInFlight;
  }

  /** Whether an attempt that carries `bound` is one of this bound's: `bound` is this one or within it. */
  covers(bound: AttemptBound | undefined): boolean {
    for (let inner = bound ?? null; inner !== null; inner = inner.within) {
      if (inner === this) return true;
    }
    return false;
  }

  /** Cuts this bound's attempts with `reason` (the first cut counts): the one in flight now, any other when it reaches its transport. */
  cut(reason: RelayError): void {
    if (this.cutReason !== null) return;
    this.cutReason = reason;
    this.stoppedInFlight = this.client.cutRegisteredAttempt(this, reason);
  }

  /** This bound, or the one it is within, that was cut first from the inside out; `null` when none was. */
  private cutter(): AttemptBound | null {
    for (let bound: AttemptBound | null = this; bound !== null; bound = bound.within) {
      if (bound.cutReason !== null) return bound;
    }
    return null;
  }
}
