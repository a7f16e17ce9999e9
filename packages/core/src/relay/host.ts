import type { Logger, Target } from '../types.js';
import type { InFlight } from './in-flight.js';
import type { RelayState } from './api.js';

/** What an exchange sees of the relay serving it: where to log, what to publish, where to report. */
export interface ExchangeHost {
  readonly logger: Logger;
  readonly target: Target;
  /** Log lines may carry query strings. */
  readonly logQuery: boolean;
  readonly state: RelayState;
  /** Counts an exchange in flight from now on. */
  track(exchange: InFlight): void;
  /** Counts it out again; the last one out lets a waiting shutdown finish. */
  finished(exchange: InFlight): void;
}
