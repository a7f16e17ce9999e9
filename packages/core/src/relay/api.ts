import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { RelayError } from '../errors.js';
import type { ForwardedHeaders } from '../request/forwarding.js';
import type { TrustProxy } from '../request/trust-proxy.js';
import type { Logger, Stage, Target, Timeouts, TlsOptions, Transport, UpgradeTransport } from '../types.js';

/** Options of `createRelay`. */
export interface RelayOptions {
  /** The upstream service, e.g. `http://auth:8000` or `https://api.internal/base`. Required. */
  targetBaseUrl: string | URL;
  /** Prepended to every upstream path, after the target's own path. Default `/`. */
  upstreamPrefix?: string;
  /** For plain node:http: the path the relay answers under, stripped before forwarding; other paths get 404. Default none. */
  mountPath?: string;
  /** Send the client's `Host` upstream instead of the upstream's own. Default `false`. */
  preserveHost?: boolean;
  /** Milliseconds: one number for every phase, or `{ connect, read, write, pool }`. Defaults 5 000 / 30 000 / 30 000 / 10 000. */
  timeout?: number | Partial<Timeouts>;
  /** Stages around the transport; `stages[0]` is the outermost. Default none. */
  stages?: readonly Stage[];
  /** The innermost handler. Default `httpTransport()`. */
  transport?: Transport;
  /** The WebSocket transport (`websocket()` from `@relay/ws`); without it `relay.upgrade` answers 501. */
  websocket?: UpgradeTransport;
  /** A pino-style logger. Default: nothing is logged. */
  logger?: Logger;
  /** TLS settings for an `https:` target. Certificates are verified by default. */
  tls?: TlsOptions;
  /** How long `shutdown()` waits for in-flight requests before aborting them, in ms. Default 10 000. */
  shutdownTimeout?: number;
  /**
   * Whose forwarding headers to believe. `false` (default: an edge gateway) removes client-sent
   * `X-Forwarded-*`, `Forwarded`, `X-Real-IP` and `True-Client-IP` and writes the relay's own;
   * `true`, or a list of addresses / CIDR ranges / `loopback` matching the immediate peer, keeps a
   * trusted proxy's values and appends to its `X-Forwarded-For`.
   */
  trustProxy?: TrustProxy;
  /** Which forwarding headers the relay writes: `true` (default) all, `false` none, or `{ for, proto, host, port, prefix }`. */
  forwarded?: boolean | ForwardedHeaders;
  /** Log request targets with their query string. Default `false`: queries often carry tokens, so log lines show the path only. */
  logQuery?: boolean;
}

/** A relay: a node:http request listener plus its lifecycle. */
export interface Relay {
  /**
   * A request listener for node:http and node:http2 (its compatibility API): `http.createServer(relay.handle)`,
   * `http2.createServer(relay.handle)`, `http2.createSecureServer({ allowHTTP1: true, … }, relay.handle)`.
   */
  readonly handle: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;
  /**
   * Serves one request whose mount path a framework has already stripped: `path` is the
   * request target after the mount (`/login?x=1`), `mountPath` what was stripped. When
   * `onError` is given, errors before the response go to it instead of being answered.
   */
  dispatch(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, route: DispatchRoute): void;
  /**
   * A node:http `upgrade` listener: `server.on('upgrade', relay.upgrade)`. The handshake goes
   * through the same stages as HTTP, then to the `websocket` transport.
   */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /**
   * The Web-standard entry (Next.js route handlers, Hono, `Bun.serve`-shaped code): the same
   * stages and transport, bodies streamed both ways, never buffered. The relay's `mountPath` is
   * stripped from the request's path; aborting `request.signal` or cancelling the response body
   * aborts the upstream attempt. A Web `Request` has no socket: pass the client's address in
   * `client` for `X-Forwarded-For`. A `Request` whose body was already read gets a 500
   * (`ERR_BODY_CONSUMED`) and an error log line.
   *
   * @throws TypeError for a `client` with unknown keys or an `address` that is not an IP address
   */
  fetch(request: Request, client?: FetchClient): Promise<Response>;
  /** `upgrade` for a framework that routed the request itself: see `DispatchRoute` (its `onError` is not used). */
  dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: DispatchRoute): void;
  /**
   * Acquires the transport's resources now, surfacing their errors; idempotent. Optional: the
   * first request starts a relay that is not started. After `shutdown()` only `startup()` starts it again.
   */
  startup(): Promise<void>;
  /** Refuses new requests (503), waits for in-flight ones up to the deadline, aborts the rest, releases resources; idempotent. */
  shutdown(options?: { timeout?: number }): Promise<void>;
  /** The parsed upstream target. */
  readonly target: Target;
  /** The resolved timeouts. */
  readonly timeouts: Readonly<Timeouts>;
  /** The logger in use. */
  readonly logger: Logger;
  /** `stopped`, `starting`, `running` or `stopping`. */
  readonly state: RelayState;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Whether log lines carry query strings (`logQuery`). */
  readonly logQuery: boolean;
}

/** Where a framework-mounted request goes: see `Relay.dispatch`. */
export interface DispatchRoute {
  /**
   * The request target after the mount path, e.g. `/login?next=%2F`. For the bare mount path
   * itself (`/auth`, no trailing slash) it is `''` or just the query (`?next=%2F`): that maps to
   * the upstream prefix without a trailing slash, as `relay.handle` maps a bare `mountPath`.
   */
  path: string;
  /** The mount path the framework stripped, `''` for none. Sent as `X-Forwarded-Prefix`. */
  mountPath: string;
  /** Receives errors that happen before the response starts, instead of an error response. */
  onError?: (error: RelayError) => void;
  /** The request target as the client sent it (`client.originalUrl`); default `req.url`. */
  originalUrl?: string;
  /**
   * The whole request body, already read and decoded (a body parser consumed `req`): sent instead
   * of reading `req`, with a fresh `Content-Length` and without `Content-Encoding` or
   * `Transfer-Encoding`, and replayable by a retry stage. Not used for upgrades.
   */
  body?: Buffer;
  /**
   * The request headers as the app's middleware left them, usually `req.headers`: a name added or
   * changed there is sent with that value, a deleted one is not sent, and an untouched one keeps
   * the client's lines. Hop-by-hop headers and `Content-Length` stay the client's; the Connection,
   * forwarding and Host rules apply as to the client's own headers. Default: the client's header
   * lines (`req.rawHeaders`), as `relay.handle` sends them.
   */
  headers?: IncomingHttpHeaders;
}

/** A relay's lifecycle state. */
export type RelayState = 'stopped' | 'starting' | 'running' | 'stopping';

/** What `relay.fetch` knows of the client that a Web `Request` does not say. */
export interface FetchClient {
  /** The client's IP address (`net.isIP`), for `X-Forwarded-For` and the logs. Default `''` (unknown). */
  address?: string;
}
