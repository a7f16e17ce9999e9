import type { Logger } from '@relay/core';

/**
 * At most one log line per `interval` ms for a repeated event (a store that is down, a flood of
 * refusals): the next line says how many were left out, so a storm never floods the log.
 */
export class LogThrottle {
  private last = -Infinity;
  private suppressed = 0;

  constructor(private readonly interval = 1000) {}

  /** Logs `message` at `level` unless a line was logged less than `interval` ms ago. */
  log(logger: Logger, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = performance.now();
    if (now - this.last < this.interval) {
      this.suppressed++;
      return;
    }
    this.last = now;
    if (this.suppressed > 0) fields.suppressed = this.suppressed;
    this.suppressed = 0;
    logger[level](fields, message);
  }
}
