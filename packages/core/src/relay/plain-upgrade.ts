import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** `Upgrade: websocket` among the offered protocols: the one upgrade a relay serves. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade);
}

type ServerSocket = Duplex & { server?: { emit(event: string, socket: Duplex): boolean; listenerCount(event: string): number } | null; encrypted?: boolean };

/**
 * Serves an upgrade the relay does not speak (`Upgrade: h2c`, which `curl --http2` and Java's
 * HttpClient offer on every `http:` request) as the plain HTTP/1.1 request it also is: RFC 9110
 * §7.8 lets a server ignore `Upgrade`, and nginx, Envoy and node:http without an `upgrade`
 * listener all do. Its head, without `Upgrade` and the fields `Connection` lists, goes back in
 * front of the bytes not yet read, and the socket back to its server's HTTP handling, which
 * parses it as a request like any other (its body, keep-alive and the app's own routes too).
 * False when the socket has no server to go back to, or its server has `upgrade` listeners of
 * the app's own, which hear of this request too and may answer it: the caller refuses it then.
 *
 * @example
 * server.on('upgrade', (req, socket, head) => {
 *   if (!isWebSocketUpgrade(req) && serveAsPlainRequest(req, socket, head)) return;
 *   // … a WebSocket upgrade
 * });
 */
export function serveAsPlainRequest(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
  const server = (socket as ServerSocket).server;
  if (server == null || typeof server.emit !== 'function' || socket.destroyed || server.listenerCount('upgrade') > 1) return false;
  socket.unshift(Buffer.concat([Buffer.from(plainHead(req), 'latin1'), head]));
  // A TLS server hands its HTTP parser the socket once the handshake is over.
  server.emit((socket as ServerSocket).encrypted === true ? 'secureConnection' : 'connection', socket);
  return true;
}

/** The request head without the upgrade offer: `Upgrade`, and what `Connection` lists but `close`/`keep-alive`. */
function plainHead(req: IncomingMessage): string {
  const listed = connectionTokens(req.headers.connection);
  const kept = listed.filter((token) => token === 'close' || token === 'keep-alive');
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!.toLowerCase();
    if (name === 'upgrade' || name === 'connection' || listed.includes(name)) continue;
    text += `${raw[index]}: ${raw[index + 1]}\r\n`;
  }
  if (kept.length > 0) text += `Connection: ${kept.join(', ')}\r\n`;
  return `${text}\r\n`;
}

function connectionTokens(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== '');
}
