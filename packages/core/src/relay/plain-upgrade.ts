import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** `Upgrade: websocket` among the offered protocols: the one upgrade a relay serves. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade);
}

type ConnectionListener = (this: unknown, socket: Duplex) => void;
type HttpServerLike = { listeners(event: string): Function[]; listenerCount(event: string): number };
type PendingAnswer = { writableFinished: boolean; once(event: 'finish', listener: () => void): unknown };
type ServerSocket = Duplex & { server?: HttpServerLike | null; encrypted?: boolean; _httpMessage?: PendingAnswer | null };

/**
 * Serves an upgrade the relay does not speak (`Upgrade: h2c`, which `curl --http2` and Java's
 * HttpClient offer on every `http:` request) as the plain HTTP/1.1 request it also is: RFC 9110
 * §7.8 lets a server ignore `Upgrade`, and nginx, Envoy and node:http without an `upgrade`
 * listener all do. Its head, without `Upgrade` and the fields `Connection` lists, goes back in
 * front of the bytes not yet read, and the socket back to its server's own HTTP connection
 * handling (not the app's `connection` listeners: it is no new connection), which parses it as
 * a request like any other (its body, keep-alive and the app's own routes too). When the server
 * has `upgrade` listeners of the app's own, they have their turn first. False when the socket
 * has no server to go back to: the caller refuses it then.
 *
 * @example
 * server.on('upgrade', (req, socket, head) => {
 *   if (!isWebSocketUpgrade(req) && serveAsPlainRequest(req, socket, head)) return;
 *   // … a WebSocket upgrade
 * });
 */
export function serveAsPlainRequest(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
  const server = (socket as ServerSocket).server;
  if (server == null || socket.destroyed) return false;
  const parse = httpConnectionListener(server, (socket as ServerSocket).encrypted === true);
  if (parse === undefined) return false;
  // node took its `error` listener off with its parser: until the socket has a parser again, a
  // reset from the client would be an uncaught 'error'.
  socket.on('error', destroyOnError);
  if (server.listenerCount('upgrade') > 1) {
    // The app's own listeners heard it too (a ws server for its own path): theirs if they answer
    // it in their turn (ws refuses an h2c offer with 400), served as a plain request if they leave it.
    const written = (socket as Socket).bytesWritten;
    setImmediate(() => {
      if (!socket.destroyed && (socket as Socket).bytesWritten === written) serve(parse, server, req, socket, head);
    });
    return true;
  }
  serve(parse, server, req, socket, head);
  return true;
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

function serve(parse: ConnectionListener, server: HttpServerLike, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.unshift(Buffer.concat([Buffer.from(plainHead(req), 'latin1'), head]));
  // A pipelined request before this one is still being answered: node's queue of answers for
  // this connection went with its parser, so parsing starts again once that answer is written.
  const pending = (socket as ServerSocket)._httpMessage;
  if (pending != null && !pending.writableFinished) pending.once('finish', () => reparse(parse, server, socket));
  else reparse(parse, server, socket);
}

/** The socket back to node's HTTP handling, whose own `error` listener takes over. */
function reparse(parse: ConnectionListener, server: HttpServerLike, socket: Duplex): void {
  if (socket.destroyed) return;
  socket.removeListener('error', destroyOnError);
  parse.call(server, socket);
}

/** node's own listener that gives a connection its HTTP parser (`secureConnection` on TLS servers). */
function httpConnectionListener(server: HttpServerLike, encrypted: boolean): ConnectionListener | undefined {
  const event = encrypted ? 'secureConnection' : 'connection';
  return server.listeners(event).find((listener) => listener.name === 'connectionListener') as ConnectionListener | undefined;
}

/**
 * Names `Connection` may list that stay, in the head and in `Connection`: the connection's own
 * options, and the body's framing. Dropped, `Content-Length` or `Transfer-Encoding` would turn
 * the body (still unread, in `head`) into the next request node parses: one request smuggled
 * inside another (review s38j). Kept and still listed, the relay refuses the request with 400 as
 * it refuses any that lists its framing.
 */
const keptTokens = new Set(['close', 'keep-alive', 'content-length', 'transfer-encoding']);

/** The request head without the upgrade offer: `Upgrade`, and what `Connection` lists but `keptTokens`. */
function plainHead(req: IncomingMessage): string {
  const listed = connectionTokens(req.headers.connection);
  const kept = listed.filter((token) => keptTokens.has(token));
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!.toLowerCase();
    if (name === 'upgrade' || name === 'connection' || (listed.includes(name) && !keptTokens.has(name))) continue;
    text += `${raw[index]}: ${raw[index + 1]}\r\n`;
  }
  if (kept.length > 0) text += `Connection: ${kept.join(', ')}\r\n`;
  return `${text}\r\n`;
}

function connectionTokens(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== '');
}
