import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { gatewayServerOptions } from '@relay/core';

/** A TLS listener's request listener: HTTP/2 streams and HTTP/1.1 requests alike. */
export type SecureRequestListener = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

/** What a TLS listener holds open: sessions get a GOAWAY at shutdown, sockets are ended after the drain. */
interface OpenConnections {
  readonly sessions: Set<Http2Session>;
  readonly sockets: Set<Socket>;
  closing: boolean;
}

const openConnections = new WeakMap<Http2SecureServer, OpenConnections>();

/**
 * At most this many requests at once on one HTTP/2 connection (nginx's `http2_max_concurrent_streams`):
 * node's default is 2^32 - 1, which lets one connection hold as many requests as a thousand HTTP/1.1 ones.
 */
const maxConcurrentStreams = 128;

/**
 * An HTTPS listener that offers HTTP/2 (ALPN `h2`) and still serves HTTP/1.1 (`allowHTTP1`, so
 * WebSocket handshakes keep working through its `upgrade` event).
 *
 * Slow clients: HTTP/1.1 connections are served by node:http's code, which reads the limits of
 * `gatewayServerOptions` from the server (head within 10 s, whole request within 5 min, idle
 * keep-alive closed after 5 s). node:http2 has no head or request deadline; its equivalent is the
 * session's inactivity timer: a session with no stream open and no frame either way for the
 * keep-alive timeout gets a GOAWAY (the client opens a new connection for more), so a client that
 * connects and sends nothing, or goes quiet, holds no connection for longer than on HTTP/1.1.
 *
 * @example
 * const server = createSecureListener({ cert, key }, gateway.handle);
 * server.on('upgrade', gateway.upgrade).listen(8443);
 */
export function createSecureListener(tls: { cert: Buffer; key: Buffer }, handle: SecureRequestListener): Http2SecureServer {
  const server = createSecureServer({ allowHTTP1: true, cert: tls.cert, key: tls.key, settings: { maxConcurrentStreams } }, handle);
  // node:http's code serves the HTTP/1.1 clients and reads these limits from the server; node:http2
  // sets its own otherwise (a 60 s head timeout, no keep-alive timeout, a check every 30 s).
  Object.assign(server, gatewayServerOptions);
  const open: OpenConnections = { sessions: new Set(), sockets: new Set(), closing: false };
  openConnections.set(server, open);
  // Sockets from their first byte (a TLS handshake that never finishes included), for `endConnections`.
  server.on('connection', (socket: Socket) => {
    open.sockets.add(socket);
    socket.once('close', () => open.sockets.delete(socket));
  });
  server.on('session', (session: Http2Session) => watchSession(session, open));
  return server;
}

function watchSession(session: Http2Session, open: OpenConnections): void {
  if (open.closing) return void session.close();
  open.sessions.add(session);
  session.once('close', () => open.sessions.delete(session));
  // Streams open on the session: a quiet one waiting for a slow upstream (a long poll, a stream of
  // events) is not an idle connection, as nginx's keepalive_timeout applies only with none open.
  let streams = 0;
  session.on('stream', (stream: ServerHttp2Stream) => {
    streams++;
    stream.once('close', () => streams--);
  });
  session.setTimeout(gatewayServerOptions.keepAliveTimeout ?? 5_000, () => {
    if (streams === 0) closeIdle(session);
  });
}
/** How long a GOAWAY'd idle session may take to close before its connection is destroyed. */
const closeGraceMs = 1_000;

/**
 * Closes an idle session: a GOAWAY, then node ends the socket once its writes are out. A client
 * that reads nothing (its download was cut as too slow) never lets them out: after a short grace
 * the connection is destroyed, as node:http destroys an HTTP/1.1 one.
 */
function closeIdle(session: Http2Session): void {
  session.close();
  const grace = setTimeout(() => session.destroy(), closeGraceMs);
  grace.unref();
  session.once('close', () => clearTimeout(grace));
}

/**
 * Shutdown, first step, after `server.close()` (which closes the idle HTTP/1.1 connections of an
 * `allowHTTP1` server itself): a GOAWAY on every HTTP/2 session (HTTP/2's `Connection: close`: open
 * streams finish, no new ones). An idle session would otherwise keep `server.close()` waiting for good.
 *
 * @example
 * server.close();
 * goAwaySessions(server);
 */
export function goAwaySessions(server: Http2SecureServer): void {
  const open = openConnections.get(server);
  if (open === undefined) return;
  open.closing = true;
  for (const session of open.sessions) session.close();
}

/**
 * Shutdown, last step, once the relays have drained: ends every connection still open (node:http's
 * `closeAllConnections`, which a node:http2 server lacks).
 *
 * @example
 * await gateway.shutdown(timeout);
 * endConnections(server);
 */
export function endConnections(server: Http2SecureServer): void {
  const open = openConnections.get(server);
  if (open === undefined) return;
  for (const session of open.sessions) session.destroy();
  for (const socket of open.sockets) socket.destroy();
}
