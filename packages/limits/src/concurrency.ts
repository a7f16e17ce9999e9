import type { Handler, Logger, ProxyRequest, ProxyResponse, Stage } from '@relay/core';
import { compileKey, shownKey, type KeyOf, type KeySource } from './keys.js';
import { LogThrottle } from './log-throttle.js';
import { assertKnownKeys, assertOptionsObject, assertPositiveInteger, readName } from './options.js';
import { tooManyInFlight } from './responses.js';
import { HeldHandoff, SlotTable, type Slot } from './slots.js';

/** Options of `concurrencyLimit()`. */
export interface ConcurrencyLimitOptions {
  /** Most requests and WebSocket sessions in progress at once per key. Required. */
  max: number;
  /** What the limit counts by. Default `'client'`. */
  key?: KeySource;
  /** A name for logs. Default `'default'`. */
  name?: string;
}

const optionNames = ['max', 'key', 'name'];

/**
 * Limits the requests in progress per key (one client, one API key, the whole route): a request
 * holds its slot until its response body has been sent or dropped, a WebSocket session until its
 * client socket closes. Over the limit: 429 with `Retry-After: 1`. Counted in this process.
 *
 * @example
 * createRelay({ targetBaseUrl, websocket: websocket(), stages: [concurrencyLimit({ max: 10 })] });
 */
export function concurrencyLimit(options: ConcurrencyLimitOptions): Stage {
  assertOptionsObject(options, 'concurrencyLimit');
  assertKnownKeys(options, optionNames, 'concurrencyLimit');
  assertPositiveInteger(options.max, 'concurrencyLimit: max');
  const keyOf = compileKey(options.key, 'concurrencyLimit: key');
  const name = readName(options.name, 'concurrencyLimit: name', 'default');
  // One table per stage value: a relay wraps its stages for HTTP and for WebSocket handshakes, both count here.
  const table = new SlotTable(options.max);
  const refusals = new LogThrottle();
  return {
    name: 'concurrency-limit',
    wrap: (next, context) => new ConcurrencyLimiter(table, refusals, keyOf, name, next, context.logger).handle,
  };
}

/** One concurrencyLimit stage built into one relay. */
class ConcurrencyLimiter {
  readonly handle: Handler;

  constructor(
    readonly table: SlotTable,
    private readonly refusals: LogThrottle,
    private readonly keyOf: KeyOf,
    private readonly name: string,
    private readonly next: Handler,
    private readonly logger: Logger,
  ) {
    const limiter = this;
    this.handle = function concurrencyLimitStage(request) {
      return limiter.run(request);
    };
  }

  private run(request: ProxyRequest): Promise<ProxyResponse> {
    // A retry's later attempt runs inside the first one's slot: never a second slot for one client request.
    if (request.attempt > 1) return this.next(request);
    let key: string | null;
    try {
      key = this.keyOf(request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (key === null) return this.next(request);
    const slot = this.table.acquire(key);
    if (slot === null) {
      this.refusals.log(this.logger, 'info', { limit: this.name, key: shownKey(key), max: this.table.max }, 'concurrency limit reached: 429');
      return Promise.resolve(tooManyInFlight());
    }
    let pending: Promise<ProxyResponse>;
    try {
      pending = this.next(request);
    } catch (error) {
      slot.release();
      return Promise.reject(error);
    }
    // A JS stage may answer without a promise: core awaits whatever it gets, so this must too.
    return Promise.resolve(pending).then(
      (response) => holdFor(response, slot, request),
      (error: unknown) => {
        slot.release();
        throw error;
      },
    );
  }
}

/**
 * Keeps the slot while the response is in progress: its body, or its WebSocket session. Whatever
 * the answer, the slot is held only by something that will end (a stream's `close`, the hand-off)
 * or released here: a slot kept for good refuses the key forever.
 */
function holdFor(response: ProxyResponse, slot: Slot, request: ProxyRequest): ProxyResponse {
  try {
    if (response.upgrade !== undefined) {
      return { ...response, upgrade: new HeldHandoff(response.upgrade, slot, request.client.signal) };
    }
    // Core sends a body left out (`undefined`) as no body, and answers 500 for one that is not a
    // stream (a string): neither will ever close, so the slot goes back now.
    const { body } = response;
    if (body != null && typeof (body as { once?: unknown }).once === 'function') slot.holdUntilClose(body);
    else slot.release();
    return response;
  } catch (error) {
    // A response that is not an object (core answers 500 for it): the request is over.
    slot.release();
    throw error;
  }
}
