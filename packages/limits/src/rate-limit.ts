import { RelayError, type ClientInfo, type Handler, type Logger, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
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
  /** What the limit counts by. Default `'client'` (`request.client.clientAddress`: the client behind trusted proxies). */
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
  const shared = new SharedLimit(readOptions(options));
  return {
    name: 'rate-limit',
    wrap: (next, context) => new RateLimiter(shared, next, context.logger).handle,
  };
}

/**
 * What every pipeline built from one stage value shares: a relay wraps its stages once for HTTP
 * and once for WebSocket handshakes, and both must count in the same buckets.
 */
class SharedLimit {
  readonly bucket: Bucket;
  readonly policyItem: string;
  /** Client requests refused at their first attempt (`null`: the store failed closed), refused again if retried. */
  readonly refused = new WeakMap<ClientInfo, Decision | null>();
  readonly refusals = new LogThrottle();
  readonly failures = new LogThrottle();

  constructor(readonly settings: Settings) {
    this.bucket = settings.store.bind(settings.policy);
    this.policyItem = policyItem(settings.policy);
  }

  /** The 429 for a refused decision, with the IETF fields unless they are off. */
  refusal(decision: Decision): ProxyResponse {
    const response = tooManyRequests(retryAfterSeconds(decision));
    if (this.settings.headers) appendRateLimitHeaders(response.headers, this.policyItem, rateLimitItem(this.settings.policy.name, decision));
    return response;
  }
}

/** One rateLimit stage wrapped around one pipeline's `next`. */
class RateLimiter {
  readonly handle: Handler;

  constructor(
    private readonly shared: SharedLimit,
    private readonly next: Handler,
    private readonly logger: Logger,
  ) {
    const limiter = this;
    this.handle = function rateLimitStage(request) {
      return limiter.run(request);
    };
  }

  private run(request: ProxyRequest): Promise<ProxyResponse> {
    if (request.attempt > 1) return this.laterAttempt(request);
    let key: string | null;
    try {
      key = this.shared.settings.keyOf(request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (key === null) return this.next(request);
    let decision: Decision | Promise<Decision>;
    try {
      decision = this.shared.bucket.take(key);
    } catch (error) {
      return this.storeFailed(request, error);
    }
    if (typeof (decision as Promise<Decision>).then === 'function') {
      return (decision as Promise<Decision>).then(
        (settled) => this.decide(request, key, settled),
        (error: unknown) => this.storeFailed(request, error),
      );
    }
    return this.decide(request, key, decision as Decision);
  }

  private decide(request: ProxyRequest, key: string, decision: Decision): Promise<ProxyResponse> {
    // Kept small, the refusals in a method of their own: V8 then inlines the allowed path into its caller.
    if (!decision.allowed) return this.refuse(request, key, decision);
    const { settings } = this.shared;
    if (!settings.headers || settings.dryRun) return this.withoutHeaders(request, key, decision);
    const { policyItem } = this.shared;
    const item = rateLimitItem(settings.policy.name, decision);
    return this.next(request).then(
      (response) => {
        // A limit further in (or its store, failing closed) refused the request: it was not let
        // through, so it is not charged here either (nginx charges its limit_req zones only once
        // every one has passed). Seen on the answer: a limit never refused further in pays one check.
        if (refusedByLimit(response)) return this.refunded(response, key, decision, item);
        appendRateLimitHeaders(response.headers, policyItem, item);
        return response;
      },
      (error: unknown) => {
        throw withRateLimitFields(error, policyItem, item);
      },
    );
  }

  /** No token left: 429 (or, in dry run, let through and logged). */
  private refuse(request: ProxyRequest, key: string, decision: Decision): Promise<ProxyResponse> {
    const { settings, refusals } = this.shared;
    const fields = { limit: settings.policy.name, key: shownKey(key), retryAfter: retryAfterSeconds(decision) };
    if (settings.dryRun) {
      refusals.log(this.logger, 'warn', fields, 'rate limit exceeded (dry run: let through)');
      return this.next(request);
    }
    refusals.log(this.logger, 'info', fields, 'rate limit exceeded: 429');
    this.shared.refused.set(request.client, decision);
    return Promise.resolve(this.shared.refusal(decision));
  }

  /** An allowed request of a limit that adds no fields (`headers: false`, `dryRun`): a refusal further in still gives its token back. */
  private withoutHeaders(request: ProxyRequest, key: string, decision: Decision): Promise<ProxyResponse> {
    // A store that cannot give a token back keeps it spent: nothing to watch for.
    if (this.shared.bucket.refund === undefined) return this.next(request);
    return this.next(request).then((response) => (refusedByLimit(response) ? this.refunded(response, key, decision, null) : response));
  }

  /** Gives back the token this request took, and reports the bucket as it was before it. */
  private refunded(response: ProxyResponse, key: string, decision: Decision, item: string | null): ProxyResponse {
    const { bucket, settings, policyItem } = this.shared;
    if (bucket.refund === undefined) {
      if (item !== null) appendRateLimitHeaders(response.headers, policyItem, item);
      return response;
    }
    try {
      // Not awaited: the 429 need not wait for a shared store; a failure is logged, the token stays spent.
      const pending = bucket.refund(key, decision);
      if (pending !== undefined) pending.then(undefined, (error: unknown) => this.refundFailed(error));
    } catch (error) {
      this.refundFailed(error);
    }
    if (item !== null) {
      const interval = settings.policy.duration / settings.policy.points;
      const before = { ...decision, remaining: decision.remaining + 1, resetMs: Math.max(0, decision.resetMs - interval) };
      appendRateLimitHeaders(response.headers, policyItem, rateLimitItem(settings.policy.name, before));
    }
    return response;
  }

  private refundFailed(error: unknown): void {
    const { settings, failures } = this.shared;
    const fields = { limit: settings.policy.name, store: settings.store.kind, error: (error as Error)?.message ?? String(error) };
    failures.log(this.logger, 'error', fields, 'rate limit store failed: the token of a refused request is not given back');
  }

  /** A retry's later attempt: never counted again; refused again if the first attempt was. */
  private laterAttempt(request: ProxyRequest): Promise<ProxyResponse> {
    const { refused } = this.shared;
    if (!refused.has(request.client)) return this.next(request);
    const decision = refused.get(request.client);
    return Promise.resolve(decision === null || decision === undefined ? storeUnavailable() : this.shared.refusal(decision));
  }

  private storeFailed(request: ProxyRequest, error: unknown): Promise<ProxyResponse> {
    const { settings, failures } = this.shared;
    const fields = { limit: settings.policy.name, store: settings.store.kind, error: (error as Error)?.message ?? String(error) };
    if (settings.failOpen || settings.dryRun) {
      failures.log(this.logger, 'error', fields, 'rate limit store failed: request let through (failOpen)');
      return this.next(request);
    }
    failures.log(this.logger, 'error', fields, 'rate limit store failed: 503 (failOpen: false)');
    this.shared.refused.set(request.client, null);
    return Promise.resolve(storeUnavailable());
  }
}

/**
 * Whether the pipeline inside refused the request by a limit: another rate limit's 429, or its
 * store's 503 when it fails closed (both marked by `errorCode`, see responses.ts). An upstream's own
 * 429 is an answer to a request that was let through, and is charged.
 */
function refusedByLimit(response: ProxyResponse): boolean {
  // A JS stage may answer something that is not a response: core answers 500 for it, not this check.
  const code = (response as ProxyResponse | undefined)?.errorCode;
  return code !== undefined && (code === 'ERR_RATE_LIMITED' || code === 'ERR_LIMIT_STORE');
}

/**
 * The relay's own answer to a failed request (a 502 for an allowed request that spent a token)
 * carries the fields too, as every response does: the error is remade with them in its headers.
 */
function withRateLimitFields(error: unknown, policy: string, item: string): unknown {
  if (!(error instanceof RelayError) || error.code === 'ERR_CLIENT_ABORTED') return error;
  const fields: Record<string, string> = { ...error.headers };
  appendRateLimitHeaders(fields, policy, item);
  return new RelayError(error.code, error.message, { cause: error.cause ?? error, headers: fields });
}
