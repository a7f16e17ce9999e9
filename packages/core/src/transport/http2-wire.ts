// What an HTTP/2 upstream is sent and what it answers, as Relay's protocol-neutral values: the
// request head as an HTTP/2 header block, the response head without pseudo-headers, and node:http2's
// errors as `RelayError` codes.
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http2';
import { RelayError, toRelayError } from '../errors.js';
import { copyEndToEndHeaders } from '../request/hop-by-hop.js';
import type { HeaderRecord, ProxyRequest, Target } from '../types.js';

/**
 * Headers that are never sent on HTTP/2 (RFC 9113 §8.2.2): connection-specific ones, which the
 * relay normally removed already but a stage may have set, and `host`, which becomes `:authority`.
 */
const notOnHttp2: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']);

/** The pseudo-header of a response: never part of `ProxyResponse.headers`. */
const responsePseudo: ReadonlySet<string> = new Set([':status']);

/**
 * The HTTP/2 header block of `request` for `target`: pseudo-headers first, `host` as `:authority`
 * (the target's when the request has none, or when it names the relay's own target), `te` only as `trailers`, connection-specific headers left out.
 * Throws (ERR_INVALID_CHAR, ERR_INVALID_HTTP_TOKEN) on a name or value a stage made invalid:
 * node:http2 would send it and the upstream would reset the stream.
 */
export function http2RequestHeaders(request: ProxyRequest, target: Target, relayTarget: Target): OutgoingHttpHeaders {
  const source = request.headers;
  // A stage that chose another target leaves the relay target's Host: it becomes the chosen one's.
  const host = target !== relayTarget && source.host === relayTarget.host ? target.host : source.host;
  const headers: OutgoingHttpHeaders = {
    ':method': request.method,
    ':scheme': target.protocol === 'https:' ? 'https' : 'http',
    ':authority': typeof host === 'string' ? host : target.host,
    ':path': request.path,
  };
  for (const name in source) {
    const value = source[name];
    if (value === undefined || notOnHttp2.has(name)) continue;
    if (name === 'te') {
      if (asksForTrailers(value)) headers.te = 'trailers';
      continue;
    }
    validateHeaderName(name);
    // node:http2 sends a value with CR or LF as it is: the upstream would reset the stream.
    if (typeof value === 'string') validateHeaderValue(name, value);
    else for (const item of value) validateHeaderValue(name, item);
    headers[name] = value;
  }
  return headers;
}

function asksForTrailers(value: string | string[]): boolean {
  const list = typeof value === 'string' ? value : value.join(',');
  return list.split(',').some((token) => token.trim().toLowerCase() === 'trailers');
}

/** The end-to-end headers of an HTTP/2 response head, from node:http2's raw list: no pseudo-headers. */
export function http2ResponseHeaders(rawHeaders: readonly string[]): HeaderRecord {
  return copyEndToEndHeaders(rawHeaders, responsePseudo);
}

const resetCodes: ReadonlySet<string> = new Set([
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
  'ERR_HTTP2_SOCKET_UNBOUND',
]);

/**
 * node:http2's errors as `RelayError`s: a reset stream, a GOAWAY with an error, a session gone
 * under its streams → `ERR_UPSTREAM_RESET`; a protocol violation (the upstream does not speak
 * HTTP/2, or sent a malformed frame) → `ERR_UPSTREAM_PROTOCOL`; network and TLS errors as for
 * every transport (`toRelayError`).
 */
export function http2Failure(error: Error): RelayError {
  if (error instanceof RelayError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === 'ERR_HTTP2_ERROR' || error.message.includes('PROTOCOL_ERROR')) {
    return new RelayError('ERR_UPSTREAM_PROTOCOL', `upstream HTTP/2 protocol error: ${error.message}`, { cause: error });
  }
  if (resetCodes.has(code)) return new RelayError('ERR_UPSTREAM_RESET', error.message, { cause: error });
  return toRelayError(error);
}

/**
 * Gives a node:http2 error a `RelayError` cause, so whoever reads it with `toRelayError` (the
 * relay, when a response body fails after its head) gets the same code the transport would give.
 */
export function explainHttp2Error(error: Error): RelayError {
  const failure = http2Failure(error);
  if (failure !== error && (error as { cause?: unknown }).cause === undefined) (error as { cause?: unknown }).cause = failure;
  return failure;
}
