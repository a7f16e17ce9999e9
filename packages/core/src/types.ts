import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { AttemptBound } from './request/attempt-bound.js';
import type { ClientInfo } from './request/client.js';

/** A header value: repeated headers keep every value, in order. */
export type HeaderValue = string | string[];

/**
 * Headers as a record with lowercase names. `set-cookie` is always an array
 * so two cookies never merge into one line.
 */
export interface HeaderRecord {
  [name: string]: HeaderValue | undefined;
  'set-cookie'?: string[];
}

/**
 * One attempt at an upstream request, as a plain value.
 *
 * Stages pass a new value (`{ ...request, headers }`) or change `headers` in place: the
 * record belongs to this request. Each attempt of a retry gets its own value.
 */
export interface ProxyRequest {
  /** The request method, as the client sent it. */
  method: string;
  /** The origin-form target sent upstream: path and query, e.g. `/api/v1/login?next=%2F`. */
  path: string;
  /** Request headers, hop-by-hop ones already removed, forwarding headers already set. */
  headers: HeaderRecord;
  /** The body as a stream, or `null` when the request has none. Never a buffered string. */
  body: Readable | null;
  /**
   * Whether the body can be sent again: a function returning a fresh stream of the same
   * bytes, or `null` when `body` is a one-shot stream (the client's own).
   */
  replayBody: (() => Readable) | null;
  /** 1 for the first attempt; a retry stage counts up. */
  attempt: number;
  /**
   * Where this attempt goes, when a stage chose (a balancer, a router): a `Target` from
   * `parseTarget`, with the same base path as the relay's own (the path already carries it).
   * Absent: the relay's `targetBaseUrl`. Each target has its own keep-alive pool.
   */
  target?: Target;
  /**
   * The client's trailer fields, read once `body` has ended; present when the client's request
   * can carry them (a chunked HTTP/1.1 body, an HTTP/2 body). Fields that belong in the head
   * (framing, `Host`, authentication, content description) are already left out. A stage sees
   * or edits them by wrapping this function; the transport sends what it returns after the body.
   */
  trailers?: () => HeaderRecord | null;
  /**
   * When a one-shot `body` starts being read: `'send'` (the default) as the attempt is sent, so
   * the first bytes are on their way while the connection is made; `'connected'` only once the
   * attempt has its connection, so an attempt whose connection was refused, timed out or never
   * came from the pool leaves the body unread, and a retry can send it whole. `retry()` asks for
   * `'connected'` on a streamed body it may resend. (The HTTP/2 and undici transports always
   * read it once connected.)
   */
  bodyRead?: 'send' | 'connected';
  /**
   * The bound a stage put on this attempt (`retry({ deadline })`'s run): once the bound is cut, the
   * attempt fails with its reason wherever it is, at once at its transport or before it is sent.
   * A spread (`{ ...request, headers }`) keeps it; a stage that builds a new request value field by
   * field copies it as it copies `client`. Absent on attempts nothing bounds.
   */
  bound?: AttemptBound;
  /** Facts about the client and its connection, shared by every attempt. */
  client: ClientInfo;
}

/** An upstream response, as a plain value. */
export interface ProxyResponse {
  /** The status code. */
  status: number;
  /** The reason phrase; Node's standard one when empty. */
  statusMessage: string;
  /** Response headers, hop-by-hop ones already removed. */
  headers: HeaderRecord;
  /** The body stream, or `null` when the response has none (HEAD, 204, 304). */
  body: Readable | null;
  /**
   * The trailer fields, read once the body has ended; present when the upstream's response can
   * carry them (chunked HTTP/1.1, HTTP/2). A stage sees or edits them by wrapping this function.
   * They reach clients that take trailers: HTTP/2 ones, and HTTP/1.1 ones that sent `TE: trailers`.
   */
  trailers?: () => HeaderRecord | null;
  /**
   * The HTTP version the upstream answered with (`'1.0'`, `'1.1'`, `'2'`), set by the node:http,
   * got and HTTP/2 transports; `Via` names it (RFC 9110 §7.6.3). Absent from a response a stage
   * made itself or another transport gave: read it as `'1.1'`.
   */
  httpVersion?: '1.0' | '1.1' | '2';
  /**
   * Set by a WebSocket transport on a `101` answer: completes the client's handshake once the
   * stages have seen the response. Absent on every plain HTTP response.
   */
  upgrade?: UpgradeHandoff;
  /**
   * The stable code of the error this answer stands for, when a stage answers an error itself
   * instead of throwing (a 413 `ERR_BODY_TOO_LARGE`, a 429 `ERR_RATE_LIMITED`): access logs and
   * metrics report it as they report the code of an error the relay answers. Absent otherwise.
   */
  errorCode?: string;
  /**
   * The upstream that answered, when a stage chose it for the attempt (`request.target`: a
   * balancer's member, a router's choice) and says so here. For stages outside `retry()`, which
   * sees a copy of the request per attempt, that rewrite what names the upstream (`rewriteLocation()`).
   */
  target?: Target;
}

/**
 * The hand-off of an upstream WebSocket that accepted a handshake. The relay calls `accept`
 * when the final response is still this `101`, else `reject` (idempotent). A stage may replace
 * the response and drop the hand-off from view, so a WebSocket transport must also register
 * `request.client.setAbortHandler` for its upstream connection: the relay aborts the client
 * of every handshake that ends without `accept`.
 */
export interface UpgradeHandoff {
  /** Completes the client's handshake with `headers` (as the stages left them) and starts relaying frames. */
  accept(incoming: IncomingMessage, socket: Duplex, head: Buffer, headers: HeaderRecord): void;
  /** Closes the upstream connection: the client will not be accepted. */
  reject(reason: Error): void;
}

/** Turns a request into a response: a stage's `next`, and the relay's pipeline as a whole. */
export type Handler = (request: ProxyRequest) => Promise<ProxyResponse>;

/** What a stage is told about the relay it is built into. */
export interface StageContext {
  /** The relay's logger (silent when none was given). */
  readonly logger: Logger;
  /** The upstream target. */
  readonly target: Target;
  /** The relay's per-attempt timeouts. */
  readonly timeouts: Readonly<Timeouts>;
  /** Log lines may carry query strings (`createRelay({ logQuery })`); use `loggedPath(path, context)` in log fields. */
  readonly logQuery?: boolean;
  /**
   * The relay's TLS settings for `https:` upstreams (`createRelay({ tls })`: CA, `servername`,
   * `rejectUnauthorized`, client certificate), as its transport uses them; `{}` when none were
   * given. For a stage that opens its own upstream connections (a balancer's health checks) and
   * must connect the way attempts do. Absent in a context not built by a relay or `stageContext()`.
   */
  readonly tls?: Readonly<TlsOptions>;
}

/**
 * A pipeline stage. `wrap` is called once, when the relay is built, and returns the handler
 * that runs for every request. It may call `next` more than once (a retry does).
 */
export interface Stage {
  /** A short name for logs and stack traces. */
  readonly name: string;
  /** Wraps the next handler; called once per relay, with the relay's logger and target. */
  wrap(next: Handler, context: StageContext): Handler;
}

/** Any pino-style logger: a method per level taking a structured object and a message. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Timeouts in milliseconds; 0 disables one. */
export interface Timeouts {
  /** TCP (and TLS) connect. */
  connect: number;
  /** Longest wait for the response head, or between two response bytes. */
  read: number;
  /** Longest stall while sending the request body. */
  write: number;
  /** Longest wait for a free pooled connection. */
  pool: number;
}

/** TLS settings for an `https:` upstream. Certificates are verified unless `rejectUnauthorized` is false. */
export interface TlsOptions {
  /** Extra trusted certificate authorities (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Verify the upstream's certificate; default `true`. */
  rejectUnauthorized?: boolean;
  /** The name checked against the certificate and sent as SNI; default the target's hostname. */
  servername?: string;
  /** A client certificate chain (PEM) for upstreams that ask for one (mutual TLS), with its `key`. */
  cert?: string | Buffer | Array<string | Buffer>;
  /** The private key (PEM) of `cert`. */
  key?: string | Buffer | Array<string | Buffer>;
  /** A client certificate and key as PFX/PKCS#12, instead of `cert` and `key`. */
  pfx?: string | Buffer | Array<string | Buffer>;
  /** The passphrase of `key` or `pfx`. */
  passphrase?: string;
}

/** The upstream a relay forwards to, parsed once from `targetBaseUrl`. */
export interface Target {
  /** `http:` or `https:`. */
  readonly protocol: 'http:' | 'https:';
  /** Host name or IP address, without IPv6 brackets. */
  readonly hostname: string;
  /** The port, default ports filled in. */
  readonly port: number;
  /** The `Host` header value for the upstream: `host[:port]`. */
  readonly host: string;
  /** `protocol//host`, for logs. */
  readonly origin: string;
  /** Target path and `upstreamPrefix` joined, without a trailing slash (`''` for the root). */
  readonly basePath: string;
  /** For a `unix:` target: the socket the connections go to (`host` is then `localhost`). */
  readonly socketPath?: string;
}

/** What a transport is given when a relay binds it. */
export interface TransportConfig {
  readonly target: Target;
  readonly timeouts: Timeouts;
  readonly tls: TlsOptions;
  readonly logger: Logger;
  /** Log lines may carry the query string (`createRelay({ logQuery: true })`); by default paths are logged without it. */
  readonly logQuery?: boolean;
}

/** A transport bound to one relay: the innermost handler and its resources. */
export interface BoundTransport {
  /** Sends one attempt upstream. Rejects with a `RelayError` before the response head. */
  readonly handle: Handler;
  /** Acquires resources (agents, pools); called by `relay.startup()`. */
  startup(): void | Promise<void>;
  /** Releases them; called by `relay.shutdown()` after in-flight work is done or aborted. */
  shutdown(): void | Promise<void>;
  /**
   * True when the transport logs each failed attempt itself (`logUpstreamFailure`); otherwise the
   * relay wraps `handle` to log them.
   */
  readonly logsFailures?: boolean;
}

/**
 * The transport of WebSocket handshakes (`createRelay({ websocket })`): its `handle` opens the
 * upstream connection for a handshake request that went through the stages and answers with the
 * upstream's `101` (carrying `upgrade`) or its rejection; `shutdown` closes relayed sessions with 1001.
 */
export interface UpgradeTransport {
  /** Tells it apart from an HTTP `Transport`: one cannot be passed where the other is expected. */
  readonly kind: 'upgrade';
  /** A short name for logs. */
  readonly name: string;
  /** Binds the transport to one relay's target; called once by `createRelay`. */
  bind(config: TransportConfig): BoundTransport;
}

/** The innermost handler of a pipeline, swappable: node:http by default. */
export interface Transport {
  /** Tells it apart from an `UpgradeTransport`: one cannot be passed where the other is expected. */
  readonly kind: 'http';
  /** A short name for logs. */
  readonly name: string;
  /** Binds the transport to one relay's target; called once by `createRelay`. */
  bind(config: TransportConfig): BoundTransport;
}
