import type { ClientInfo, Handler, Logger, ProxyRequest, ProxyResponse, Stage } from '@relay/core';
import { appendRateLimitHeaders, policyItem, rateLimitItem, retryAfterSeconds } from './headers.js';
import { compileKey, shownKey, type KeyOf, type KeySource } from './keys.js';
import { LogThrottle } from './log-throttle.js';
import { readPolicy, readStore } from './limiter.js';
import { assertKnownKeys, assertOptionsObject, readBoolean } from './options.js';
import { storeUnavailable, tooManyRequests } from './responses.js';
import type { Bucket, BucketPolicy, Decision, LimitStore } from './store.js';

/** Options of `rateLimit()`. */
export interface RateLimitOptions {
  /** Tokens added per `duration`: the sustained rate. Required. */
  points: number;
  /** The refill period in milliseconds. Required. */
  duration: number;
  /** The bucket's capacity: requests allowed at once after a quiet spell. Default `points`. */
  burst?: number;
  /** What the limit counts by. Default `'client'` (the client address core resolved). */
  key?: KeySource;
  /** The policy name in the `RateLimit` headers and in store keys. Default `'default'`. */
  name?: string;
  /** Where the buckets live. Default a `memoryStore()` of this stage's own. */
  store?: LimitStore;
  /** Count and log what would be refused, refuse nothing, add no headers. Default `false`. */
  dryRun?: boolean;
  /** Add `RateLimit` and `RateLimit-Policy` to every response. Default `true`. */
  headers?: boolean;
  /** When the store cannot answer: `true` lets the request through, `false` answers 503. Default `true`. Logged either way. */
  failOpen?: boolean;
}

const optionNames = ['points', 'duration', 'burst', 'key', 'name', 'store', 'dryRun', 'headers', 'failOpen'];

/** The settings of one rateLimit stage, checked once. */
interface Settings {
  policy: BucketPolicy;
  keyOf: KeyOf;
  store: LimitStore;
  dryRun: boolean;
  headers: boolean;
  failOpen: boolean;
}

function readOptions(options: unknown): Settings {
  assertOptionsObject(options, 'rateLimit');
  assertKnownKeys(options, optionNames, 'rateLimit');
  const store = readStore(options.store, 'rateLimit');
  return {
    policy: readPolicy(options, 'rateLimit'),
    keyOf: compileKey(options.key, 'rateLimit: key'),
    store,
    dryRun: readBoolean(options.dryRun, 'rateLimit: dryRun', false),
    headers: readBoolean(options.headers, 'rateLimit: headers', true),
    failOpen: readBoolean(options.failOpen, 'rateLimit: failOpen', true),
  };
}

/**
 * A token-bucket rate limit: each request takes a token from its key's bucket (`burst` tokens at
 * most, `points` more every `duration` ms); without one it gets 429 with `Retry-After`, and every
 * response carries the IETF `RateLimit` and `RateLimit-Policy` fields. Applies to HTTP requests and
 * WebSocket handshakes alike. Put it outside `retry()`: a retried attempt is not a new request,
 * and if it sits inside, only a client request's first attempt is counted.
 *
 * @example
 * createRelay({ targetBaseUrl, stages: [rateLimit({ points: 100, duration: 60_000 }), retry()] });
 */
export function rateLimit(options: RateLimitOptions): Stage {
  const settings = readOptions(options);
  return {
    name: 'rate-limit',
    wrap: (next, context) => new RateLimiter(settings, settings.store.bind(settings.policy), next, context.logger).handle,
  };
}

/** One rateLimit stage built into one relay. */
class RateLimiter {
  readonly handle: Handler;
  private readonly policyItem: string;
  /** Client requests refused at their first attempt (`null`: the store failed closed), refused again if retried. */
  private readonly refused = new WeakMap<ClientInfo, Decision | null>();
  private readonly refusals = new LogThrottle();
  private readonly failures = new LogThrottle();

  constructor(
    private readonly settings: Settings,
    private readonly bucket: Bucket,
    private readonly next: Handler,
    private readonly logger: Logger,
  ) {
    this.policyItem = policyItem(settings.policy);
    const limiter = this;
    this.handle = function rateLimitStage(request) {
      return limiter.run(request);
    };
  }

  private run(request: ProxyRequest): Promise<ProxyResponse> {
    if (request.attempt > 1) return this.laterAttempt(request);
    let key: string | null;
    try {
      key = this.settings.keyOf(request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (key === null) return this.next(request);
    let decision: Decision | Promise<Decision>;
    try {
      decision = this.bucket.take(key);
    } catch (error) {
      return this.storeFailed(request, error);
    }
    if (decision instanceof Promise) {
      return decision.then(
        (settled) => this.decide(request, key, settled),
        (error: unknown) => this.storeFailed(request, error),
      );
    }
    return this.decide(request, key, decision);
  }

  private decide(request: ProxyRequest, key: string, decision: Decision): Promise<ProxyResponse> {
    const { settings } = this;
    if (!decision.allowed) {
      const fields = { limit: settings.policy.name, key: shownKey(key), retryAfter: retryAfterSeconds(decision) };
      if (settings.dryRun) {
        this.refusals.log(this.logger, 'warn', fields, 'rate limit exceeded (dry run: let through)');
        return this.next(request);
      }
      this.refusals.log(this.logger, 'info', fields, 'rate limit exceeded: 429');
      this.refused.set(request.client, decision);
      return Promise.resolve(this.refusal(decision));
    }
    if (!settings.headers || settings.dryRun) return this.next(request);
    return this.next(request).then((response) => {
      appendRateLimitHeaders(response.headers, this.policyItem, rateLimitItem(settings.policy.name, decision));
      return response;
    });
  }

  private refusal(decision: Decision): ProxyResponse {
    const response = tooManyRequests(retryAfterSeconds(decision));
    if (this.settings.headers) appendRateLimitHeaders(response.headers, this.policyItem, rateLimitItem(this.settings.policy.name, decision));
    return response;
  }

  /** A retry's later attempt: never counted again; refused again if the first attempt was. */
  private laterAttempt(request: ProxyRequest): Promise<ProxyResponse> {
    if (!this.refused.has(request.client)) return this.next(request);
    const decision = this.refused.get(request.client);
    return Promise.resolve(decision === null || decision === undefined ? storeUnavailable() : this.refusal(decision));
  }

  private storeFailed(request: ProxyRequest, error: unknown): Promise<ProxyResponse> {
    const { settings } = this;
    const fields = { limit: settings.policy.name, store: settings.store.kind, error: (error as Error)?.message ?? String(error) };
    if (settings.failOpen || settings.dryRun) {
      this.failures.log(this.logger, 'error', fields, 'rate limit store failed: request let through (failOpen)');
      return this.next(request);
    }
    this.failures.log(this.logger, 'error', fields, 'rate limit store failed: 503 (failOpen: false)');
    this.refused.set(request.client, null);
    return Promise.resolve(storeUnavailable());
  }
}
