import { STATUS_CODES, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { RelayError, type RelayErrorCode } from '../errors.js';
import type { HeaderRecord, ProxyResponse } from '../types.js';
import { answersGrpc, grpcErrorHead } from './grpc-answer.js';

const explanations: Record<RelayErrorCode, string> = {
  ERR_BAD_PATH: 'the request path is not allowed',
  ERR_BAD_HANDSHAKE: 'the WebSocket handshake is invalid',
  ERR_BAD_REQUEST: 'the request head is invalid',
  ERR_TRANSFER_CODING: 'only the chunked transfer coding is supported',
  ERR_NOT_MOUNTED: 'no route for this path',
  ERR_NOT_STARTED: 'the relay is not started',
  ERR_SHUTTING_DOWN: 'the relay is shutting down',
  ERR_UPSTREAM_UNREACHABLE: 'the upstream service is unreachable',
  ERR_UPSTREAM_RESET: 'the upstream service closed the connection',
  ERR_UPSTREAM_PROTOCOL: 'the upstream service sent an invalid response',
  ERR_UPSTREAM_TLS: 'the TLS handshake with the upstream service failed',
  ERR_CONNECT_TIMEOUT: 'connecting to the upstream service timed out',
  ERR_READ_TIMEOUT: 'the upstream service did not answer in time',
  ERR_WRITE_TIMEOUT: 'sending the request to the upstream service timed out',
  ERR_POOL_TIMEOUT: 'no upstream connection became free in time',
  ERR_DEADLINE: 'the upstream service did not answer within the deadline',
  ERR_CLIENT_TIMEOUT: 'the client sent or read too slowly',
  ERR_CLIENT_ABORTED: 'the client went away',
  ERR_INTERNAL: 'the relay failed to handle the request',
  ERR_BODY_CONSUMED: 'the request body was read before the relay and cannot be forwarded',
  ERR_BODY_TOO_LARGE: 'the request body is larger than this service accepts',
  ERR_UPGRADE_UNSUPPORTED: 'WebSocket relaying is not enabled here',
};

const reasonPhrases: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  499: 'Client Closed Request',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The short, address-free text body a client gets for a `RelayError` code. */
export function errorBody(error: RelayError): string {
  return `${error.status} ${reasonPhrases[error.status] ?? 'Error'}: ${explanations[error.code]} (${error.code})\n`;
}

/** Adds `error.headers` (a stage's request id …) to the headers of its answer, none of the answer's own replaced. */
export function withErrorHeaders<T extends Record<string, string | number>>(headers: T, error: RelayError): T {
  const extra = error.headers;
  if (extra === undefined) return headers;
  for (const name in extra) if (!Object.hasOwn(headers, name)) (headers as Record<string, string | number>)[name] = extra[name]!;
  return headers;
}

/**
 * Headers that describe a body (its length, type, coding, version, range): an app may have set
 * them before the relay for the body it expected, and they would misdescribe the error's own.
 * `Content-Security-Policy` and other `content-` names that do not describe the body stay.
 */
const representationHeaders = new Set([
  'content-length',
  'content-type',
  'content-encoding',
  'content-language',
  'content-location',
  'content-range',
  'content-disposition',
  'content-md5',
  'content-digest',
  'repr-digest',
  'digest',
  'transfer-encoding',
  'trailer',
  'etag',
  'last-modified',
  'accept-ranges',
]);

/**
 * Answers a client with the status of `error` and a short text body that names no internal
 * address, port or stack. When the response has started already, the connection is
 * destroyed instead: never a second status line, never a body that looks complete.
 *
 * Headers the app set on `res` before the relay (CORS by a middleware, a request id) stay, as
 * they do on an upstream's answer and as nginx's `add_header … always` sends them: without
 * `Access-Control-Allow-Origin` a browser could not read the 502. Those that describe a body
 * (`representationHeaders`) go, and the error's own headers replace any of the same name.
 */
export function sendError(res: ServerResponse, error: RelayError): void {
  if (res.destroyed || res.writableEnded) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(error);
  const http2 = isHttp2(res);
  if (http2 && answersGrpc(res)) {
    sendGrpcError(res, error, body);
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  // A client cut for being slow may still be sending a body: do not wait for the rest of it.
  // (HTTP/2 has no Connection header: the stream ends, the connection stays.)
  if (error.code === 'ERR_CLIENT_TIMEOUT' && !http2) headers.connection = 'close';
  if (error.code === 'ERR_SHUTTING_DOWN' || error.code === 'ERR_NOT_STARTED') {
    if (http2) goAway(res);
    else headers.connection = 'close';
    headers['retry-after'] = '1';
  }
  withErrorHeaders(headers, error);
  for (const name of res.getHeaderNames()) if (representationHeaders.has(name)) res.removeHeader(name);
  if (http2) res.writeHead(error.status, headers);
  // Always an explicit reason phrase: a failed writeHead leaves its phrase on `res` (an
  // upstream `OK`, or an invalid one that would make this writeHead throw too), and Node
  // would reuse it: `500 OK`, or a connection closed without any answer.
  else res.writeHead(error.status, reasonPhrases[error.status] ?? STATUS_CODES[error.status] ?? 'Error', headers);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** A relay error to a gRPC call: trailers-only, its status in `grpc-status`, the message in `grpc-message`, a stage's error headers kept. */
function sendGrpcError(res: ServerResponse, error: RelayError, text: string): void {
  if (error.code === 'ERR_SHUTTING_DOWN' || error.code === 'ERR_NOT_STARTED') goAway(res);
  for (const name of res.getHeaderNames()) if (representationHeaders.has(name)) res.removeHeader(name);
  // Set, not written: `end()` then sends the head with END_STREAM (trailers-only); writeHead would
  // send it at once and end the stream on an empty DATA frame, a call with no status to grpc-js.
  res.statusCode = 200;
  const head = withErrorHeaders(grpcErrorHead(error, text), error);
  for (const name in head) res.setHeader(name, head[name]!);
  res.end();
}

/** The longest stage answer body that becomes a `grpc-message`: a one-line error, not a page. */
const grpcMessageLimit = 1024;

/**
 * A stage's own error answer (`isLocalErrorAnswer`: `rateLimit()`'s 429 …) to a gRPC call, as
 * `sendGrpcError` answers the relay's: trailers-only, HTTP 200, its status in `grpc-status`, its
 * short text body in `grpc-message`, its other headers (`retry-after` …) kept. A gRPC client reads
 * no HTTP status but guesses from it: a 429 is UNAVAILABLE without the message, a 413 UNKNOWN.
 */
export async function localGrpcAnswer(response: ProxyResponse, res: ServerResponse): Promise<ProxyResponse> {
  const text = (await shortText(response, res)) || `${response.status} ${response.statusMessage || STATUS_CODES[response.status] || 'Error'}`;
  const headers: HeaderRecord = {};
  for (const name in response.headers) if (!representationHeaders.has(name)) headers[name] = response.headers[name];
  Object.assign(headers, grpcErrorHead({ status: response.status, code: response.errorCode }, text));
  return { status: 200, statusMessage: '', headers, body: null, errorCode: response.errorCode, target: response.target };
}

/**
 * The body of a short answer (a declared length up to `grpcMessageLimit`) as text, trimmed; '' for
 * none, a longer or unsized one (a stream), or one that fails. The body is consumed either way.
 */
async function shortText(response: ProxyResponse, res: ServerResponse): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  // A client already gone would never close again to end the wait.
  if (res.destroyed || !(Number(response.headers['content-length']) <= grpcMessageLimit)) {
    body.destroy();
    return '';
  }
  // A body that never ends must not hold the call once its client has gone (a rare path: a closure is fine).
  const stop = (): void => void body.destroy();
  res.once('close', stop);
  try {
    return (await readUpTo(body, grpcMessageLimit)).trim();
  } catch {
    return '';
  } finally {
    res.off('close', stop);
  }
}

/** The whole of `body` as UTF-8, or '' when it is longer than `limit` bytes (whatever its Content-Length said). */
async function readUpTo(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += bytes.length;
    // Leaving the loop destroys the body.
    if (size > limit) return '';
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

type SessionOf = { stream?: { session?: { closed: boolean; destroyed: boolean; close(): void } } };

/**
 * HTTP/2's `Connection: close`: a GOAWAY on the client's session, so it reconnects (to another
 * instance) for its next request, while the streams it has open still finish (Envoy and nginx
 * drain so).
 */
export function goAway(res: ServerResponse): void {
  const session = (res as SessionOf).stream?.session;
  if (session !== undefined && !session.closed && !session.destroyed) session.close();
}

/**
 * Whether `res` is node:http2's compatibility response (`http2.createServer(relay.handle)`): no
 * reason phrase, no connection-specific headers, and streams that always emit `close`.
 */
export function isHttp2(res: ServerResponse): boolean {
  return (res as { stream?: unknown }).stream !== undefined;
}

/**
 * A short plain-text answer a stage gives itself (a 429, a 503), in the relay's style: the
 * bytes made once by the caller, `Content-Length`, `no-store`, plus `headers` (`Retry-After` …).
 *
 * @example
 * const busy = Buffer.from('429 Too Many Requests: retry later (ERR_BUSY)\n');
 * return textResponse(429, busy, { 'retry-after': '1' });
 */
export function textResponse(status: number, body: Buffer, headers: HeaderRecord = {}): ProxyResponse {
  return {
    status,
    statusMessage: '',
    headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), 'cache-control': 'no-store', ...headers },
    body: Readable.from([body]),
  };
}

/**
 * What a pipeline answered, checked before anything is written: an object with a status the
 * relay can send (100–599) and a body that is `null` or a Node stream. A stage that answers
 * anything else (nothing, a string body, status 0) is the relay's fault to the client: a 500
 * and a log line, as a stage that throws is, never a half-written answer or a hung request.
 */
export function checkedResponse(response: unknown): ProxyResponse {
  if (response === null || typeof response !== 'object') throw new RelayError('ERR_INTERNAL', `a stage answered with ${response === null ? 'null' : typeof response}, not a response`);
  const answer = response as ProxyResponse;
  const { status, body } = answer;
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new RelayError('ERR_INTERNAL', `a stage answered with the status ${String(status)}`);
  // A body left out is no body, as `null` says.
  if (body === undefined) answer.body = null;
  else if (body !== null && typeof (body as { pipe?: unknown }).pipe !== 'function') throw new RelayError('ERR_INTERNAL', 'a stage answered with a body that is not a Node stream (or null)');
  return answer;
}
