import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Readable } from 'node:stream';
import { RelayError } from '../errors.js';
import type { HeaderRecord, ProxyRequest, Target } from '../types.js';
import { appRawHeaders } from './app-headers.js';
import { ClientInfo } from './client.js';
import { assertHeaderListComplete, isForwardingHeader, readRequestHead, setForwardingHeaders, type ForwardingPolicy } from './forwarding.js';
import { trailerFieldsFromRaw } from './hop-by-hop.js';
import { mapRequestPath, splitAbsoluteForm } from './path.js';
import { trustsPeer, unmapIPv4 } from './trust-proxy.js';

/** How a request reached the relay: what is left to strip, and what the client saw. */
export interface Entry {
  /** The mount path the relay strips itself: `''` when a framework stripped it already. */
  readonly strip: string;
  /** The mount path the client saw, sent as `X-Forwarded-Prefix`. */
  readonly mountPath: string;
  /** The request target as the client sent it; default `req.url`. */
  readonly originalUrl?: string;
  /** The whole body, already read by a framework's body parser. */
  readonly body?: Buffer;
  /** The headers as the app's middleware left them (`req.headers`): reconciled with the raw lines. */
  readonly headers?: IncomingHttpHeaders;
}

/** What the relay decided once, at creation, about building upstream requests. */
export interface RequestRules {
  readonly target: Target;
  readonly trustProxy: boolean | BlockList;
  readonly forwarding: { readonly edge: ForwardingPolicy; readonly trusted: ForwardingPolicy };
}

/**
 * Builds the first attempt's request from the client's: the path mapped under the target (after
 * `entry.strip`), the end-to-end headers and the relay's forwarding headers, the client's facts.
 * `rawTarget` is the request target, or what follows a framework's mount: there `''` or a bare
 * query stands for the mount path itself.
 *
 * @throws RelayError for a request that cannot be relayed (400, 404, 501, 500 `ERR_BODY_CONSUMED`).
 */
export function buildRequest(rules: RequestRules, req: IncomingMessage, rawTarget: string, entry: Entry): ProxyRequest {
  assertHeaderListComplete(req);
  if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1) assertHttp10Framing(req);
  else if (req.httpVersionMajor === 2) assertHttp2Method(req.method ?? '');
  const socket = req.socket as TLSSocket | null;
  const address = unmapIPv4(socket?.remoteAddress ?? '');
  const trusted = trustsPeer(rules.trustProxy, address);
  const forwarding = trusted ? rules.forwarding.trusted : rules.forwarding.edge;
  // Only a front door that hands over an app's edits pays for reading them (`relay.handle` never does).
  const head = readRequestHead(entry.headers === undefined ? req.rawHeaders : appRawHeaders(req, entry.headers), forwarding);
  let path: string;
  let host = head.host ?? '';
  const first = rawTarget.charCodeAt(0);
  if (first === 47 /* / */ || first === 63 /* ? */ || rawTarget === '') {
    path = mapRequestPath(rawTarget, entry.strip, rules.target.basePath);
  } else {
    // Absolute-form: only its path is forwarded; its authority replaces Host (RFC 9112 §3.2.2).
    const absolute = splitAbsoluteForm(rawTarget);
    path = mapRequestPath(absolute.pathAndQuery, entry.strip, rules.target.basePath);
    host = absolute.authority;
  }
  const client = new ClientInfo(
    {
      address,
      scheme: socket?.encrypted === true ? 'https' : 'http',
      host,
      mountPath: entry.mountPath,
      originalUrl: entry.originalUrl ?? req.url ?? rawTarget,
      port: socket?.localPort ?? 0,
    },
    req,
  );
  const headers = head.headers;
  if (trusted) {
    // The trusted proxy's list as the relay kept it (Connection-listed names gone), before the peer is appended.
    const forwardedFor = headers['x-forwarded-for'];
    if (forwardedFor !== undefined) client.setForwardedFor(forwardedFor, rules.trustProxy);
  }
  setForwardingHeaders(headers, client, rules.target, forwarding);
  if (entry.body !== undefined) return bufferedRequest(req, path, headers, client, entry.body);
  const contentLength = headers['content-length'];
  // Only a body without a length (chunked HTTP/1.1, HTTP/2) can end with trailer fields.
  const open = head.chunked || http2Body(req);
  const hasBody = open || (contentLength !== undefined && contentLength !== '0');
  if (hasBody && req.readableEnded) {
    // A body parser mounted before the relay read it: waiting for it would hang until the read timeout.
    throw new RelayError('ERR_BODY_CONSUMED', 'the request body was already read (a body parser runs before the relay): mount the relay first');
  }
  // Every key a stage may set is present from the start, in one order (retry's attempts use it
  // too): a stage's `{ ...request, target }` then copies one shape instead of growing a new one.
  return {
    method: req.method ?? 'GET',
    path,
    headers,
    body: hasBody ? req : null,
    replayBody: null,
    attempt: 1,
    target: undefined,
    trailers: open ? clientTrailers.bind(null, req) : undefined,
    client,
  };
}

/**
 * An HTTP/1.0 message with `Transfer-Encoding` has faulty framing (RFC 9112 §6.1): a 1.0 hop in
 * front would frame it by length or by close, so relaying it as chunked HTTP/1.1 is a desync.
 * nginx answers 400 ("client sent HTTP/1.0 request with Transfer-Encoding header"); the refusal
 * closes the connection (its body is still coming, see `fail` in http-exchange.ts).
 */
function assertHttp10Framing(req: IncomingMessage): void {
  if (req.headers['transfer-encoding'] !== undefined) {
    throw new RelayError('ERR_BAD_REQUEST', 'an HTTP/1.0 request with Transfer-Encoding');
  }
}

/**
 * Methods are case-sensitive (RFC 9110 §9.1): HTTP/2's `:method` may be `delete`, which the stages
 * would see as not DELETE while node:http's client sends it upper-cased, so a rule keyed on the
 * method could be passed. HTTP/1.1's parser refuses such methods; nginx refuses them on HTTP/2 too.
 */
function assertHttp2Method(method: string): void {
  if (!/^[A-Z_-]+$/.test(method)) throw new RelayError('ERR_BAD_REQUEST', 'an HTTP/2 :method other than upper-case letters, "_" and "-"');
}

/**
 * The client's trailer fields that may go upstream. Never forwarding fields (`X-Forwarded-For`,
 * `Forwarded`, `X-Real-IP` …): the relay writes those in the head, and an upstream that merges
 * trailers into headers would otherwise take the client's word for its address (Apache's
 * MergeTrailers, CVE-2013-5704); no proxy puts them in a trailer section.
 */
function clientTrailers(req: IncomingMessage): HeaderRecord | null {
  const fields = trailerFieldsFromRaw(req.rawTrailers);
  if (fields === null) return null;
  let kept = 0;
  for (const name in fields) {
    if (isForwardingHeader(name)) delete fields[name];
    else kept++;
  }
  return kept === 0 ? null : fields;
}

/**
 * An HTTP/2 request has a body unless its HEADERS frame ended the stream, with or without a
 * `Content-Length`: sent on upstream chunked when it has none.
 */
function http2Body(req: IncomingMessage): boolean {
  return (req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
}

/** A request whose body a framework already read: the bytes are sent instead of `req`, and can be sent again. */
function bufferedRequest(req: IncomingMessage, path: string, headers: HeaderRecord, client: ClientInfo, body: Buffer): ProxyRequest {
  // The bytes are decoded and complete: the client's framing and coding no longer describe them.
  delete headers['content-encoding'];
  headers['content-length'] = String(body.length);
  const empty = body.length === 0;
  return {
    method: req.method ?? 'GET',
    path,
    headers,
    body: empty ? null : bufferStream(body),
    replayBody: empty ? null : () => bufferStream(body),
    attempt: 1,
    target: undefined,
    trailers: undefined,
    client,
  };
}

function bufferStream(bytes: Buffer): Readable {
  const stream = new Readable({ read: noop });
  stream.push(bytes);
  stream.push(null);
  return stream;
}

function noop(): void {}
