import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { logUpstreamFailure } from '../logger.js';
import { assertNonNegative, assertTimeout } from '../options.js';
import { RelayError } from '../errors.js';
import { copyHeaders } from '../request/hop-by-hop.js';
import type { HeaderRecord, HeaderValue, ProxyRequest, Target, Timeouts, TransportConfig } from '../types.js';

const idempotentWithoutBody: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE', 'PUT']);

/**
 * Whether a failed attempt may be sent once more on a new connection: the upstream closed a
 * kept-alive connection just as it was reused (reset or broken pipe before any answer), and the
 * request is idempotent with no body, so nothing can have been processed twice.
 */
export function isStaleConnectionFailure(error: Error, reusedSocket: boolean, request: ProxyRequest): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (
    reusedSocket &&
    // UND_ERR_SOCKET: undici's "other side closed", its word for node:http's ECONNRESET.
    (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') &&
    request.body === null &&
    idempotentWithoutBody.has(request.method)
  );
}

/**
 * The request's headers for an attempt to `target`: a stage that chose another target than the
 * relay's (`main`) leaves `main`'s `Host` (unless `preserveHost` kept the client's), which becomes
 * the chosen one's. A copy for that attempt (a retry may send the same headers to `main`); a spread
 * that then changes a key costs microseconds on Node 20, a for-in copy does not.
 */
export function headersForTarget(headers: HeaderRecord, target: Target, main: Target): HeaderRecord {
  if (target === main || headers.host !== main.host) return headers;
  const copy = copyHeaders(headers);
  copy.host = target.host;
  return copy;
}

/** Whether a `Content-Type` names one of the event-stream media types (parameters ignored). */
export function isEventStream(contentType: HeaderValue | undefined, types: ReadonlySet<string>): boolean {
  if (types.size === 0 || typeof contentType !== 'string') return false;
  const end = contentType.indexOf(';');
  return types.has((end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase());
}

/** A client whose request body stopped coming for the `write` timeout: its fault, 408, logged as such. */
function clientBodyStallError(ms: number): RelayError {
  return new RelayError('ERR_CLIENT_TIMEOUT', `client sent no request body bytes for ${ms} ms`);
}

/**
 * The error of an upload that went silent for the `write` timeout. With nothing queued for the
 * upstream (`queued` bytes in the transport's buffers) and the body not ended, the silence is the
 * client's, whose body stopped coming: 408, nginx's client_body_timeout, never the upstream's fault.
 * Bytes waiting mean the upstream stopped taking them: 504.
 */
export function uploadStallError(body: Readable | null, queued: number, timeouts: Readonly<Timeouts>): RelayError {
  if (body !== null && !body.readableEnded && queued === 0) return clientBodyStallError(timeouts.write);
  return timeoutError('write', timeouts);
}

/** The error for a timeout in one phase of an attempt. */
export function timeoutError(phase: 'connect' | 'write' | 'read' | 'pool', timeouts: Readonly<Timeouts>): RelayError {
  switch (phase) {
    case 'connect':
      return new RelayError('ERR_CONNECT_TIMEOUT', `upstream connect timed out after ${timeouts.connect} ms`);
    case 'write':
      return new RelayError('ERR_WRITE_TIMEOUT', `upstream write timed out after ${timeouts.write} ms`);
    case 'read':
      return new RelayError('ERR_READ_TIMEOUT', `upstream read timed out after ${timeouts.read} ms`);
    case 'pool':
      return new RelayError('ERR_POOL_TIMEOUT', `no upstream connection free within ${timeouts.pool} ms`);
  }
}

/** Whether requests already wait for a connection of `agent` (its pool is full). */
export function hasQueuedRequests(agent: Agent): boolean {
  for (const _ in agent.requests) return true;
  return false;
}

/**
 * The error for an upstream request that closed before a usable response head: Node's client
 * emits no `error` when the upstream answers `101 Switching Protocols` (with `Upgrade`) to a
 * request that asked for no upgrade: it only closes the connection.
 */
export function closedWithoutAnswer(status: number | undefined): RelayError {
  if (status === 101) return switchedProtocols();
  return new RelayError('ERR_UPSTREAM_RESET', 'upstream connection closed before a response head');
}

/**
 * The status of the head an upstream request read, if any. Node keeps it as `request.res`
 * (untyped in @types/node) even when it emits no `response` event, as for a `101` with `Upgrade`.
 */
export function headStatus(upstream: ClientRequest): number | undefined {
  return (upstream as ClientRequest & { res?: IncomingMessage | null }).res?.statusCode;
}

/** The error for a `101 Switching Protocols` answer to a plain HTTP request: a client can do nothing with it. */
export function switchedProtocols(): RelayError {
  return new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream answered 101 Switching Protocols to a request that asked for no upgrade');
}

/**
 * Why a final response head cannot be relayed, or null (the common case: a status in range, no
 * `Transfer-Encoding` or `chunked` alone):
 * - a status outside 100–599: RFC 9110 §15 has a client treat it as a 5xx, and node's `writeHead`
 *   refuses it, which would be blamed on the relay;
 * - a `Transfer-Encoding` other than `chunked` alone (`gzip, chunked`, `identity`): the transport
 *   takes the chunked framing off, so another coding would reach the client with nothing naming
 *   it (RFC 9112 §6.1; nginx: "upstream sent unknown Transfer-Encoding", 502).
 */
export function unusableHead(status: number, rawHeaders: readonly string[]): RelayError | null {
  if (!(status >= 100 && status <= 599)) return new RelayError('ERR_UPSTREAM_PROTOCOL', `upstream sent an invalid status code ${status}`);
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    const value = rawHeaders[index + 1]!;
    if (value.trim().toLowerCase() !== 'chunked') return new RelayError('ERR_UPSTREAM_PROTOCOL', `upstream sent a Transfer-Encoding the relay cannot pass on: ${JSON.stringify(value.slice(0, 64))}`);
  }
  return null;
}

/** Logs bytes an upstream sent after a complete response: the response is kept, the connection closed. */
export function logTrailingBytes(config: Pick<TransportConfig, 'logger' | 'target'>, request: ProxyRequest, error: Error): void {
  config.logger.warn(
    { method: request.method, url: (request.target ?? config.target).origin + request.path, attempt: request.attempt, code: 'ERR_UPSTREAM_PROTOCOL', error: error.message },
    'upstream sent bytes after a complete response: the response is relayed, the connection closed',
  );
}

/** The error for a client that left the response unread longer than `limit` ms. */
export function slowReaderError(limit: number): RelayError {
  return new RelayError('ERR_CLIENT_TIMEOUT', `client did not read the response for ${limit} ms`);
}

/**
 * Logs a fault of the client's side (never worded as the upstream's): the relay stopped reading
 * the upstream because the client did not read, or the client uploaded too slowly.
 */
export function logClientFault(config: Pick<TransportConfig, 'logger' | 'target'>, request: ProxyRequest, error: RelayError): void {
  config.logger.info(
    { method: request.method, path: request.path.split('?', 1)[0], attempt: request.attempt, code: error.code, error: error.message },
    'client too slow: its request is cut',
  );
}

/**
 * The ms a paused download may still wait before `slowClientTimeout` (`limit`) runs out, counted
 * from `since` (when the connection last moved); 0 or less means it has run out. A `limit` of
 * 0 waits for ever.
 */
export function slowReaderBudget(limit: number, since: number): number {
  return limit === 0 ? Infinity : limit - (Date.now() - since);
}

/** Logs a failed attempt: the client's faults in the client's words, the rest as upstream failures. */
export function logAttemptFailure(config: Pick<TransportConfig, 'logger' | 'target'>, request: ProxyRequest, error: RelayError): void {
  if (error.code === 'ERR_CLIENT_TIMEOUT') logClientFault(config, request, error);
  else logUpstreamFailure(config, request, error);
}

/** How slow or quiet the peers of an attempt may be (options of every node:http-based transport). */
export interface ClientLimitOptions {
  /**
   * How long a client may leave the response unread, in ms, before its download is cut (408
   * `ERR_CLIENT_TIMEOUT`, logged as the client's fault). While it does not read, the relay stops
   * reading the upstream, so `timeout.read` does not apply. Default 60 000 (nginx's `send_timeout`);
   * 0 = no limit. Below `timeout.read` it acts as `timeout.read`.
   */
  slowClientTimeout?: number;
  /**
   * Bytes per second a request body upload must keep up while other requests wait for a pooled
   * connection; a slower upload (measured over ≥ 1 s) is then cut (408 `ERR_CLIENT_TIMEOUT`) and
   * its connection goes to the waiting request. Without contention slow uploads are left alone.
   * Default 500 (Apache mod_reqtimeout's `MinRate`); 0 = never cut.
   */
  minUploadRate?: number;
  /**
   * Response media types that are event streams: once their head has arrived, `timeout.read` no
   * longer applies (a stream may be quiet for minutes between events); they end when either side
   * leaves. A stalled plain download is still cut. Default `['text/event-stream']`; `[]` for none.
   */
  eventStreams?: readonly string[];
}

/** The limits as an attempt reads them. */
export interface ClientLimits {
  readonly slowClientTimeout: number;
  readonly minUploadRate: number;
  /** Lowercase media types, without parameters. */
  readonly eventStreams: ReadonlySet<string>;
}

/** `type/subtype`, both tokens (RFC 9110 §8.3.1), no wildcard: what `eventStreams` is compared with. */
const bareMediaType = /^[!#$%&'+.^_`|~0-9a-z-]+\/[!#$%&'+.^_`|~0-9a-z-]+$/i;

export const clientLimitNames: readonly string[] = ['slowClientTimeout', 'minUploadRate', 'eventStreams'];

/** The defaults: nginx's `send_timeout` (60 s), Apache mod_reqtimeout's `MinRate` (500 bytes/s), server-sent events. */
export const defaultClientLimits: ClientLimits = Object.freeze({
  slowClientTimeout: 60_000,
  minUploadRate: 500,
  eventStreams: new Set(['text/event-stream']),
});

/** Reads `slowClientTimeout`, `minUploadRate` and `eventStreams` from a transport's options. */
export function resolveClientLimits(options: ClientLimitOptions): ClientLimits {
  const slowClientTimeout = options.slowClientTimeout ?? defaultClientLimits.slowClientTimeout;
  const minUploadRate = options.minUploadRate ?? defaultClientLimits.minUploadRate;
  // A timer's delay: past node's limit (about 24.8 days) it would fire after 1 ms and cut every paused download.
  assertTimeout(slowClientTimeout, 'slowClientTimeout');
  assertNonNegative(minUploadRate, 'minUploadRate');
  const types = options.eventStreams;
  if (types === undefined) return { slowClientTimeout, minUploadRate, eventStreams: defaultClientLimits.eventStreams };
  if (!Array.isArray(types) || !types.every((type) => typeof type === 'string')) throw new TypeError('eventStreams must be an array of media types');
  const bad = types.find((type) => !bareMediaType.test(type.trim()));
  // Compared with a response's media type without parameters: anything else would never match.
  if (bad !== undefined) throw new TypeError(`eventStreams: "${bad}" is not a media type without parameters or wildcards, such as text/event-stream`);
  return { slowClientTimeout, minUploadRate, eventStreams: new Set(types.map((type) => type.trim().toLowerCase())) };
}

/** An attempt that is sending a request body on a pooled connection. */
export interface Upload {
  /** The connection it holds, or `null` once it has none. */
  uploadSocket(): Socket | null;
  /** Cuts the upload: the client was too slow while others waited. */
  cutSlowUpload(error: RelayError): void;
  /** `bytesWritten` of the socket and the time when the current measuring window began. */
  uploadMark: { bytes: number; at: number };
}

/** An upload is measured over at least this long before it can be judged slow. */
const uploadWindowMs = 1_000;
/** How often uploads are checked while a request waits for a connection. */
const contentionCheckMs = 250;

/**
 * The uploads of one transport binding, and the rule that keeps slow uploads from starving
 * everyone else: only while a request waits for a pooled connection, every upload that sent
 * less than `minUploadRate` bytes/s over its last window (≥ 1 s) is cut (408 to its client)
 * so its connection goes to the waiting request. Without contention a slow upload is left alone.
 */
export class UploadWatch {
  private readonly uploads = new Set<Upload>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly minUploadRate: number,
    private readonly agent: () => Agent | null,
  ) {}

  add(upload: Upload): void {
    if (this.minUploadRate === 0) return;
    const socket = upload.uploadSocket();
    upload.uploadMark = { bytes: socket?.bytesWritten ?? 0, at: Date.now() };
    this.uploads.add(upload);
  }

  delete(upload: Upload): void {
    this.uploads.delete(upload);
  }

  /** A request has to wait for a connection: check uploads now and while requests wait. */
  contended(): void {
    if (this.minUploadRate === 0 || this.timer !== null) return;
    this.cutSlowUploads();
    this.timer = setInterval(onContentionCheck, contentionCheckMs, this);
    this.timer.unref();
  }

  check(): void {
    const agent = this.agent();
    if (agent === null || !hasQueuedRequests(agent)) {
      this.stop();
      return;
    }
    this.cutSlowUploads();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private cutSlowUploads(): void {
    const now = Date.now();
    for (const upload of this.uploads) {
      const socket = upload.uploadSocket();
      if (socket === null) continue;
      const { bytes, at } = upload.uploadMark;
      if (now - at < uploadWindowMs) continue;
      const rate = ((socket.bytesWritten - bytes) * 1000) / (now - at);
      if (rate >= this.minUploadRate) {
        upload.uploadMark = { bytes: socket.bytesWritten, at: now };
        continue;
      }
      this.uploads.delete(upload);
      upload.cutSlowUpload(
        new RelayError('ERR_CLIENT_TIMEOUT', `client uploaded ${Math.round(rate)} bytes/s (minimum ${this.minUploadRate}) while other requests waited for a connection`),
      );
    }
  }
}

function onContentionCheck(watch: UploadWatch): void {
  watch.check();
}

/**
 * Sets a request's socket timeout again after it has fired once. Node relays a socket's
 * `timeout` to its ClientRequest with a `once` listener added only while `timeoutCb` is unset,
 * so a second `setTimeout` alone would never reach the request: clearing it re-adds the relay.
 */
export function rearmRequestTimeout(upstream: ClientRequest, ms: number): void {
  (upstream as ClientRequest & { timeoutCb?: unknown }).timeoutCb = null;
  upstream.setTimeout(ms);
}

/** An `error` listener for a stream this attempt has let go of. */
export function ignoreError(): void {}
