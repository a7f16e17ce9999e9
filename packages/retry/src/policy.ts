import { errorStatus, type HeaderRecord, type RelayErrorCode } from '@relay/core';

/** Methods retried by default: the idempotent ones of RFC 9110 §9.2.2 (POST and PATCH only when opted in). */
export const idempotentMethods: readonly string[] = Object.freeze(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Statuses retried by default. */
export const defaultStatuses: readonly number[] = Object.freeze([502, 503, 504]);

/**
 * Failures retried by default: refused, unreachable or reset before any response byte, connect
 * timeout, and read timeout before the response head (the transport rejects only before the head).
 */
export const defaultErrors: readonly RelayErrorCode[] = Object.freeze([
  'ERR_UPSTREAM_UNREACHABLE',
  'ERR_UPSTREAM_RESET',
  'ERR_CONNECT_TIMEOUT',
  'ERR_READ_TIMEOUT',
] as const);

/** Codes that end a request whatever the options say: retrying them would outlive the client or the relay. */
const neverRetried: ReadonlySet<string> = new Set([
  'ERR_CLIENT_ABORTED',
  'ERR_SHUTTING_DOWN',
  'ERR_NOT_STARTED',
  'ERR_DEADLINE',
  'ERR_BAD_PATH',
  'ERR_NOT_MOUNTED',
]);

/** The statuses whose `Retry-After` is honoured (RFC 9110 §10.2.3). */
const retryAfterStatuses: ReadonlySet<number> = new Set([429, 503]);

/** `Retry-After` asked for a longer wait than the stage allows: stop retrying and pass the response on. */
export const waitTooLong = -1;

/** What the stage retries, checked once when the factory is called. */
export interface PolicyOptions {
  statuses: readonly number[];
  errors: readonly RelayErrorCode[];
  methods: readonly string[];
  /** The longest `Retry-After` honoured in ms, or `false` to ignore the header. */
  retryAfter: number | false;
}

/**
 * Which methods, statuses and failures retry, and how long a `Retry-After` asks to wait.
 * Policy only: it never touches a request or a socket.
 *
 * @example
 * const policy = new RetryPolicy({ statuses: [503], errors: defaultErrors, methods: idempotentMethods, retryAfter: 10_000 });
 * policy.retriesMethod('POST'); // false
 */
export class RetryPolicy {
  private readonly statuses: ReadonlySet<number>;
  private readonly errors: ReadonlySet<string>;
  private readonly methods: ReadonlySet<string>;
  private readonly retryAfterMax: number | false;

  constructor(options: PolicyOptions) {
    this.statuses = new Set(checkStatuses(options.statuses));
    this.errors = new Set(checkErrors(options.errors));
    this.methods = new Set(checkMethods(options.methods));
    this.retryAfterMax = options.retryAfter;
  }

  /** Whether requests with this method may be sent more than once. */
  retriesMethod(method: string): boolean {
    return this.methods.has(method);
  }

  /** Whether a response with this status is retried (when a retry is left). */
  retriesStatus(status: number): boolean {
    return this.statuses.has(status);
  }

  /** Whether a failure with this `RelayError` code is retried (when a retry is left). */
  retriesError(code: string): boolean {
    return this.errors.has(code);
  }

  /**
   * The wait a 429 or 503 asks for with `Retry-After`, in ms: `null` when there is none (or it is
   * ignored, or unreadable), `waitTooLong` when it is longer than the stage allows.
   */
  retryAfterDelay(status: number, headers: HeaderRecord, now?: number): number | null {
    if (this.retryAfterMax === false || !retryAfterStatuses.has(status)) return null;
    const delay = parseRetryAfter(headers['retry-after'], now);
    if (delay === null) return null;
    return delay > this.retryAfterMax ? waitTooLong : delay;
  }
}

const delaySeconds = /^\s*(\d+)\s*$/;
// IMF-fixdate, RFC 850 and asctime all start with a day name (RFC 9110 §5.6.7).
const httpDate = /^\s*(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s/i;
// asctime names no zone: HTTP dates are GMT, where Date.parse would read the host's local time.
const asctime = /^\s*[a-z]{3} [a-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\s*$/i;

/**
 * Reads a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns the wait
 * in ms (0 for a date in the past), or `null` when the value is absent or not one of the two forms.
 *
 * @example
 * parseRetryAfter('2'); // 2000
 * parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT'); // 0 (in the past)
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return null;
  const seconds = delaySeconds.exec(text);
  if (seconds !== null) return Number(seconds[1]) * 1000;
  if (!httpDate.test(text)) return null;
  const date = Date.parse(asctime.test(text) ? `${text.trim()} GMT` : text);
  if (Number.isNaN(date)) return null;
  return date > now ? date - now : 0;
}

function checkList<T>(value: unknown, option: string): readonly T[] {
  if (!Array.isArray(value)) throw new TypeError(`${option} must be an array`);
  return value as readonly T[];
}

function checkStatuses(value: unknown): readonly number[] {
  const statuses = checkList<number>(value, 'statuses');
  for (const status of statuses) {
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new RangeError(`statuses must hold HTTP status codes from 100 to 599, got ${String(status)}`);
    }
  }
  return statuses;
}

function checkErrors(value: unknown): readonly RelayErrorCode[] {
  const codes = checkList<RelayErrorCode>(value, 'errors');
  for (const code of codes) {
    if (typeof code !== 'string' || !Object.hasOwn(errorStatus, code)) {
      throw new RangeError(`errors must hold RelayError codes such as 'ERR_UPSTREAM_RESET', got ${String(code)}`);
    }
    if (neverRetried.has(code)) throw new RangeError(`errors cannot hold ${code}: such a request is over and is never retried`);
  }
  return codes;
}

const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkMethods(value: unknown): readonly string[] {
  const methods = checkList<string>(value, 'methods');
  for (const method of methods) {
    if (typeof method !== 'string' || !token.test(method)) throw new TypeError(`methods must hold method names, got ${String(method)}`);
  }
  // Node gives the standard methods upper-cased; accept 'post' in options as the same method.
  return methods.map((method) => method.toUpperCase());
}
