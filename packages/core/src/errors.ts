import { validateHeaderName, validateHeaderValue } from 'node:http';
import { assertKnownKeys } from './known-keys.js';
import { hopByHopHeaders } from './request/hop-by-hop.js';

/** Every error code Relay raises, with the HTTP status it maps to. */
export const errorStatus = {
  /** The request path leaves the upstream prefix or cannot be mapped safely. */
  ERR_BAD_PATH: 400,
  /** A WebSocket handshake a WebSocket transport cannot accept (method, Upgrade, Sec-WebSocket-* headers). */
  ERR_BAD_HANDSHAKE: 400,
  /** The request head is invalid or ambiguous: a repeated or invalid `Host`, userinfo in the target, `Content-Length` named in `Connection`, more headers than the server keeps. */
  ERR_BAD_REQUEST: 400,
  /** The request body uses a transfer coding other than `chunked` alone (e.g. `gzip, chunked`). */
  ERR_TRANSFER_CODING: 501,
  /** The request is outside the relay's `mountPath`. */
  ERR_NOT_MOUNTED: 404,
  /** The relay is not started: `startup()` was not called, or `shutdown()` was. */
  ERR_NOT_STARTED: 503,
  /** The relay is shutting down and takes no new requests. */
  ERR_SHUTTING_DOWN: 503,
  /** The upstream refused the connection or could not be resolved or reached. */
  ERR_UPSTREAM_UNREACHABLE: 502,
  /** The upstream closed or reset the connection before or during the response. */
  ERR_UPSTREAM_RESET: 502,
  /** The upstream sent something that is not valid HTTP. */
  ERR_UPSTREAM_PROTOCOL: 502,
  /** The TLS handshake with the upstream failed (certificate, protocol). */
  ERR_UPSTREAM_TLS: 502,
  /** Connecting to the upstream took longer than `timeout.connect`. */
  ERR_CONNECT_TIMEOUT: 504,
  /** The upstream was silent longer than `timeout.read`. */
  ERR_READ_TIMEOUT: 504,
  /** Sending the request body stalled longer than `timeout.write`. */
  ERR_WRITE_TIMEOUT: 504,
  /** No pooled connection became free within `timeout.pool`. */
  ERR_POOL_TIMEOUT: 504,
  /** No response head came before the request's overall deadline (e.g. `retry({ deadline })`), attempts and waits together. */
  ERR_DEADLINE: 504,
  /**
   * The client was too slow, not the upstream: it left the response unread longer than the
   * transport's `slowClientTimeout`, or uploaded slower than `minUploadRate` while other requests
   * waited for its upstream connection.
   */
  ERR_CLIENT_TIMEOUT: 408,
  /** The client went away; nothing is sent to it. */
  ERR_CLIENT_ABORTED: 499,
  /** A stage or transport failed in a way Relay does not know. */
  ERR_INTERNAL: 500,
  /** A middleware read the request body before the relay, in a form that cannot be rebuilt faithfully. */
  ERR_BODY_CONSUMED: 500,
  /** A request body larger than a `bodyLimit()` allows (`@relay/body`): 413 Content Too Large, RFC 9110 §15.5.14. */
  ERR_BODY_TOO_LARGE: 413,
  /** A WebSocket upgrade reached a relay built without a `websocket` transport. */
  ERR_UPGRADE_UNSUPPORTED: 501,
} as const;

/** A stable error code: see `errorStatus` for the status each maps to. */
export type RelayErrorCode = keyof typeof errorStatus;

/**
 * The one error type Relay raises. `code` is stable, `status` is the HTTP status the client
 * gets, `cause` holds the underlying error (never shown to clients).
 *
 * @example
 * throw new RelayError('ERR_UPSTREAM_UNREACHABLE', 'connect ECONNREFUSED', { cause: err });
 */
export class RelayError extends Error {
  /** A stable code, e.g. `ERR_READ_TIMEOUT`. */
  readonly code: RelayErrorCode;
  /** The HTTP status this error maps to. */
  readonly status: number;
  /**
   * Headers the relay's error answer carries besides its own (names lowercase), e.g. a request
   * id a stage added on the way out; they never replace the answer's own. `undefined` for none.
   */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: RelayErrorCode, message: string, options?: RelayErrorOptions) {
    super(message, checkedOptions(options));
    this.name = 'RelayError';
    this.code = code;
    this.status = errorStatus[code];
    this.headers = options?.headers === undefined ? undefined : answerHeaders(options.headers);
  }
}

/** Options of `new RelayError()`. */
export interface RelayErrorOptions {
  /** The underlying error: logged, never shown to the client. */
  cause?: unknown;
  /** Headers for the error answer besides its own; checked here, so a bad one fails where it is made. */
  headers?: Readonly<Record<string, string>>;
}

const errorOptionNames: readonly string[] = ['cause', 'headers'];

/** `options` of `new RelayError()`: an object of known keys, so a misspelled `casue` does not drop the cause silently. */
function checkedOptions(options: RelayErrorOptions | undefined): RelayErrorOptions | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw new TypeError('new RelayError(code, message, options): options must be an object: { cause, headers }');
  assertKnownKeys(options, errorOptionNames, 'RelayError');
  return options;
}

/**
 * `headers` with lowercase names, each name and value checked as Node checks them before writing.
 * Connection and framing headers stay the relay's: the answer's length, and whether the
 * connection lives on, follow from the answer itself (and HTTP/2 refuses them outright).
 */
function answerHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const checked: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    const lower = name.toLowerCase();
    if (hopByHopHeaders.has(lower) || lower === 'content-length') throw new TypeError(`an error answer's ${lower} header is the relay's to set`);
    checked[lower] = value;
  }
  return checked;
}

const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
]);
const resetCodes = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * Maps any error to a `RelayError`: Node's network error codes to 502/504, a `RelayError`
 * (or an error whose `cause` is one) to itself, everything else to `ERR_INTERNAL` (500).
 */
export function toRelayError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  try {
    return fromThrown(error);
  } catch {
    // An error whose fields throw when read (a getter, a Proxy): still a 500, never a second throw.
    return new RelayError('ERR_INTERNAL', 'a stage failed with an error that cannot be read');
  }
}

/**
 * A caught value as a `RelayError`: Node's network error codes to 502/504, a wrapper around a
 * `RelayError` to it, everything else to `ERR_INTERNAL`.
 */
function fromThrown(error: unknown): RelayError {
  // A client library's wrapper around a RelayError (got's RequestError when a transport
  // destroys got's stream with one) is that RelayError.
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof RelayError) return cause;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string') {
    if (unreachableCodes.has(code)) return new RelayError('ERR_UPSTREAM_UNREACHABLE', message, { cause: error });
    if (resetCodes.has(code)) return new RelayError('ERR_UPSTREAM_RESET', message, { cause: error });
    if (code === 'ETIMEDOUT') return new RelayError('ERR_CONNECT_TIMEOUT', message, { cause: error });
    if (code.startsWith('HPE_')) return new RelayError('ERR_UPSTREAM_PROTOCOL', message, { cause: error });
    if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT') || code.startsWith('DEPTH_ZERO')) {
      return new RelayError('ERR_UPSTREAM_TLS', message, { cause: error });
    }
  }
  return new RelayError('ERR_INTERNAL', message, { cause: error });
}
