import { assertKnownKeys, RelayError, toRelayError, type HeaderRecord, type RelayErrorCode } from '@relay/core';
import { assertTimerDelay } from '@relay/core/transport';
import { backoffDelay, type Backoff } from './backoff.js';
import { defaultErrors, defaultStatuses, idempotentMethods, RetryPolicy, waitTooLong } from './policy.js';

/** Options of `retry()`. Times are in milliseconds. */
export interface RetryOptions {
  /** Retries after the first attempt; 0 turns the stage into a pass-through (but `deadline` still applies). Default 0. */
  maxRetries?: number;
  /** Wait before retry n: `backoffFactor * 2^(n-1)` ms (200, 400, 800 …). Default 200. */
  backoffFactor?: number;
  /** The longest backoff wait, before jitter. Default 10 000. */
  maxBackoff?: number;
  /** Full jitter: wait a random time between 0 and the backoff delay. Default `false`. */
  jitter?: boolean;
  /** Response statuses that are retried. Default `[502, 503, 504]`. */
  statuses?: readonly number[];
  /** `RelayError` codes that are retried. Default refused/unreachable, reset before the head, connect and read timeouts. */
  errors?: readonly RelayErrorCode[];
  /** Methods that may be sent more than once. Default GET, HEAD, OPTIONS, PUT, DELETE, TRACE: add POST or PATCH to opt in. */
  methods?: readonly string[];
  /** Largest request body buffered for replay; a larger one streams once and is never retried. Default 65 536. */
  maxReplayBytes?: number;
  /** Longest `Retry-After` (on 429 and 503) honoured; a longer one ends the retries and the response passes on. `false` ignores the header. Default 10 000. */
  retryAfter?: number | false;
  /** Bounds all attempts and waits together until a response head; 504 `ERR_DEADLINE` when it passes with none. 0 for none. Default 0. */
  deadline?: number;
}

/** The options of `retry()`, checked and compiled once: what the stage, `retryPolicy` and `withRetry` share. */
export interface RetryRules {
  readonly policy: RetryPolicy;
  readonly backoff: Backoff;
  readonly maxRetries: number;
  readonly maxReplayBytes: number;
  readonly deadline: number;
}

/**
 * Checks the options of `retry()` and compiles them. Throws a TypeError or RangeError naming the option.
 *
 * @example
 * const rules = compileRetryRules({ maxRetries: 2 }, 'retry');
 */
/** Every key of `RetryOptions`, for the unknown-key check. */
const retryOptionKeys: readonly string[] = [
  'maxRetries',
  'backoffFactor',
  'maxBackoff',
  'jitter',
  'statuses',
  'errors',
  'methods',
  'maxReplayBytes',
  'retryAfter',
  'deadline',
];

export function compileRetryRules(options: RetryOptions, factory: string, ownKeys: readonly string[] = []): RetryRules {
  if (options === null || typeof options !== 'object') throw new TypeError(`${factory}(options) needs an options object`);
  // A misspelled key (`maxRetry`) would otherwise retry nothing, silently.
  assertKnownKeys(options, ownKeys.length === 0 ? retryOptionKeys : [...retryOptionKeys, ...ownKeys], factory);
  const maxRetries = checkNumber(options.maxRetries ?? 0, 'maxRetries');
  if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new RangeError(`maxRetries must be a whole number ≥ 0, got ${String(maxRetries)}`);
  const backoff: Backoff = {
    factor: checkMs(options.backoffFactor ?? 200, 'backoffFactor'),
    max: checkMs(options.maxBackoff ?? 10_000, 'maxBackoff'),
    jitter: checkBoolean(options.jitter ?? false, 'jitter'),
  };
  const maxReplayBytes = checkNumber(options.maxReplayBytes ?? 64 * 1024, 'maxReplayBytes');
  if (!Number.isSafeInteger(maxReplayBytes) || maxReplayBytes < 0) {
    throw new RangeError(`maxReplayBytes must be a whole number of bytes ≥ 0, got ${String(maxReplayBytes)}`);
  }
  const retryAfter = options.retryAfter ?? 10_000;
  if (retryAfter !== false) {
    if (typeof retryAfter !== 'number') throw new TypeError(`retryAfter must be a number or false, got ${typeof retryAfter}`);
    checkMs(retryAfter, 'retryAfter');
  }
  const deadline = checkMs(options.deadline ?? 0, 'deadline');
  const policy = new RetryPolicy({
    statuses: options.statuses ?? defaultStatuses,
    errors: options.errors ?? defaultErrors,
    methods: options.methods ?? idempotentMethods,
    retryAfter,
  });
  return { policy, backoff, maxRetries, maxReplayBytes, deadline };
}

/**
 * How one attempt ended, as the retry rules see it: a response (`status`, and `headers` for
 * `Retry-After`) or a failure (`error`).
 */
export interface RetryOutcome {
  /** The request's method: only the methods in `methods` are ever sent again. */
  readonly method: string;
  /** The response's status, when a response came. */
  readonly status?: number;
  /** The response's headers (a record such as `IncomingHttpHeaders`, or a WHATWG `Headers`), read for `Retry-After`. */
  readonly headers?: Readonly<Record<string, string | readonly string[] | number | undefined>> | Headers;
  /**
   * The failure, when no response came: a `RelayError` (matched by code against `errors`) or a
   * Node or fetch network error (`ECONNREFUSED`, `ECONNRESET`, `fetch failed` with such a cause,
   * undici's connect and headers timeouts), read as the `RelayError` code the relay would give it.
   */
  readonly error?: unknown;
}

/** A decision to retry: the wait, and what to log. */
export interface RetryDecision {
  readonly delay: number;
  readonly reason: string;
  readonly retryAfter: boolean;
}

/**
 * Whether attempt number `attempt` (1 for the first), which ended with `outcome`, is followed by
 * another, and after which wait: `null` when it is not (no retry left, a method that is not
 * retried, a status or failure that is not, or a `Retry-After` longer than allowed).
 *
 * @example
 * decideRetry(rules, 1, { method: 'GET', status: 503 }); // { delay: 200, reason: 'status 503', retryAfter: false }
 */
export function decideRetry(rules: RetryRules, attempt: number, outcome: RetryOutcome): RetryDecision | null {
  const policy = rules.policy;
  if (attempt > rules.maxRetries || !policy.retriesMethod(outcome.method)) return null;
  if (outcome.status !== undefined) {
    if (!policy.retriesStatus(outcome.status)) return null;
    const retryAfter = policy.retryAfterDelay(outcome.status, retryAfterOf(outcome.headers));
    if (retryAfter === waitTooLong) return null;
    const delay = retryAfter ?? backoffDelay(attempt, rules.backoff);
    return { delay, reason: `status ${outcome.status}`, retryAfter: retryAfter !== null };
  }
  const code = failureCode(outcome.error);
  if (!policy.retriesError(code)) return null;
  return { delay: backoffDelay(attempt, rules.backoff), reason: code, retryAfter: false };
}

/** Only the `Retry-After` of any headers shape, as the policy reads it. */
function retryAfterOf(headers: RetryOutcome['headers']): HeaderRecord {
  if (headers === undefined) return {};
  if (headers instanceof Headers) return { 'retry-after': headers.get('retry-after') ?? undefined };
  let value = headers['retry-after'];
  // Field names are case-insensitive (RFC 9110 §5.1): an SDK error's or a hand-written record may
  // say `Retry-After`. Looked for only when the lowercase name is missing (a retried answer without one).
  if (value === undefined) value = valueInAnyCase(headers, 'retry-after');
  return { 'retry-after': value === undefined ? undefined : typeof value === 'number' ? String(value) : typeof value === 'string' ? value : value[0] };
}

type PlainHeaderRecord = Exclude<RetryOutcome['headers'], Headers | undefined>;

/** The value of the first name in `headers` equal to `lowercaseName` in any case. */
function valueInAnyCase(headers: PlainHeaderRecord, lowercaseName: string): PlainHeaderRecord[string] {
  for (const name in headers) {
    if (name.length === lowercaseName.length && name.toLowerCase() === lowercaseName) return headers[name];
  }
  return undefined;
}

/** undici's own codes for fetch failures, as the relay's codes. */
const fetchCodes: Readonly<Record<string, RelayErrorCode>> = {
  UND_ERR_CONNECT_TIMEOUT: 'ERR_CONNECT_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'ERR_READ_TIMEOUT',
  UND_ERR_SOCKET: 'ERR_UPSTREAM_RESET',
};

/**
 * The `RelayError` code of a failure: its own, or the one the relay gives a Node or fetch network error.
 *
 * @example
 * failureCode(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })); // 'ERR_UPSTREAM_UNREACHABLE'
 */
export function failureCode(error: unknown): string {
  if (error instanceof RelayError) return error.code;
  const code = toRelayError(error).code;
  const cause = (error as { cause?: unknown } | null)?.cause;
  // fetch rejects with TypeError('fetch failed') and the network error as its cause.
  if (code !== 'ERR_INTERNAL' || cause === undefined || cause === null) return code;
  const causeCode = (cause as { code?: unknown }).code;
  if (typeof causeCode === 'string' && Object.hasOwn(fetchCodes, causeCode)) return fetchCodes[causeCode]!;
  return toRelayError(cause).code;
}

/**
 * The error a run ends with when its deadline passes before a response.
 *
 * @example
 * controller.abort(deadlineError(5_000));
 */
export function deadlineError(deadline: number): RelayError {
  return new RelayError('ERR_DEADLINE', `no upstream response head within the deadline of ${deadline} ms`);
}

/**
 * Whether waiting `delay` ms still leaves time before the deadline (0: none) for another attempt.
 *
 * @example
 * fitsDeadline(1_000, startedAt, 400); // false 700 ms after startedAt
 */
export function fitsDeadline(deadline: number, startedAt: number, delay: number): boolean {
  return deadline === 0 || performance.now() - startedAt + delay < deadline;
}

/**
 * Waits `ms`, rejecting with the signal's reason as soon as it fires.
 *
 * @example
 * await waitUnlessAborted(200, controller.signal);
 */
export function waitUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A number option's type: a string from the environment or a query string (`'3'`) is a TypeError
 * that says so, not a RangeError whose message shows a value that looks valid.
 */
function checkNumber(value: unknown, option: string): number {
  if (typeof value !== 'number') throw new TypeError(`${option} must be a number, got ${typeof value}`);
  return value;
}

function checkMs(value: unknown, option: string): number {
  const ms = checkNumber(value, option);
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${option} must be a finite number of milliseconds ≥ 0, got ${String(ms)}`);
  // Each of these feeds a timer: node fires a longer one after 1 ms.
  assertTimerDelay(ms, option);
  return ms;
}

function checkBoolean(value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${option} must be a boolean, got ${String(value)}`);
  return value;
}
