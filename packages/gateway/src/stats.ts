/**
 * Requests and errors of one route, per second over the last minute, kept across reloads: a ring
 * of 60 preallocated one-second buckets, so counting a request allocates nothing.
 *
 * @example
 * stats.record(response.status >= 500, Date.now());
 * stats.lastMinute(); // { requests, errors }
 */
export class RouteStats {
  total = 0;
  errors = 0;
  websocketSessions = 0;
  private readonly requests = new Uint32Array(60);
  private readonly failures = new Uint32Array(60);
  private readonly seconds = new Float64Array(60);

  constructor(readonly label: string) {}

  /** Counts one request at `now` (ms since the epoch); `failed` when it ended in a 5xx or an error. */
  record(failed: boolean, now: number): void {
    const second = Math.floor(now / 1000);
    const slot = second % 60;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.requests[slot] = 0;
      this.failures[slot] = 0;
    }
    this.requests[slot]!++;
    this.total++;
    if (failed) {
      this.failures[slot]!++;
      this.errors++;
    }
  }

  /** Requests and errors in the 60 seconds up to now. */
  lastMinute(): { requests: number; errors: number } {
    const now = Math.floor(Date.now() / 1000);
    let requests = 0;
    let errors = 0;
    for (let slot = 0; slot < 60; slot++) {
      if (now - this.seconds[slot]! >= 60) continue;
      requests += this.requests[slot]!;
      errors += this.failures[slot]!;
    }
    return { requests, errors };
  }
}

/**
 * What the gateway last saw of one upstream target. Failed attempts come from the transport's
 * failure log line (every attempt, retries included, at no cost to the ones that succeed); an
 * answer is recorded by the route's counting stage, which writes three fields.
 *
 * @example
 * health.failed('ERR_UPSTREAM_UNREACHABLE', Date.now()); // health.state === 'unhealthy'
 */
export class TargetHealth {
  state: 'unknown' | 'healthy' | 'unhealthy' = 'unknown';
  lastStatus = 0;
  lastError = '';
  lastSeen = 0;
  failures = 0;

  constructor(readonly url: string) {}

  /** An answer arrived: healthy unless it is a 502, 503 or 504 (the upstream, or whatever is in front of it, is failing). */
  answered(status: number, now: number): void {
    this.lastStatus = status;
    this.lastSeen = now;
    if (status >= 502 && status <= 504) {
      this.state = 'unhealthy';
      this.failures++;
    } else if (this.state !== 'healthy') {
      this.state = 'healthy';
      this.lastError = '';
    }
  }

  /** An attempt failed before any answer: refused, reset, timed out, TLS. */
  failed(code: string, now: number): void {
    this.state = 'unhealthy';
    this.lastStatus = 0;
    this.lastError = code;
    this.lastSeen = now;
    this.failures++;
  }
}

/**
 * The relays of one config generation: their open WebSocket sessions, so a reload waits for them.
 *
 * @example
 * if (counters.websocketSessions === 0) await generation.shutdown(0);
 */
export class GenerationCounters {
  websocketSessions = 0;
}
