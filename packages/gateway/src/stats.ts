/**
 * Requests and errors of one route, per second over the last minute, kept across reloads.
 *
 * @example
 * stats.record(response.status >= 500);
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

  /** Counts one request; `failed` when it ended in a 5xx or an error. */
  record(failed: boolean): void {
    const second = Math.floor(Date.now() / 1000);
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
 * What the gateway last saw of one upstream target: the outcome of the latest attempt sent to it.
 *
 * @example
 * health.failed('ERR_UPSTREAM_UNREACHABLE'); // health.state === 'unhealthy'
 */
export class TargetHealth {
  state: 'unknown' | 'healthy' | 'unhealthy' = 'unknown';
  lastStatus = 0;
  lastError = '';
  lastSeen = 0;
  attempts = 0;
  failures = 0;

  constructor(readonly url: string) {}

  /** An answer arrived: healthy unless it is a 502, 503 or 504 (the upstream, or whatever is in front of it, is failing). */
  answered(status: number): void {
    this.state = status >= 502 && status <= 504 ? 'unhealthy' : 'healthy';
    if (this.state === 'unhealthy') this.failures++;
    this.lastStatus = status;
    this.lastError = '';
    this.lastSeen = Date.now();
    this.attempts++;
  }

  /** The attempt failed before any answer: refused, reset, timed out, TLS. */
  failed(code: string): void {
    this.state = 'unhealthy';
    this.lastStatus = 0;
    this.lastError = code;
    this.lastSeen = Date.now();
    this.attempts++;
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
