import type { ServerResponse } from 'node:http';
import { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { answer, type ListenerRequest } from './answer.js';

/** How long a refused CONNECT's connection may take to close after its answer before it is destroyed. */
const closeGraceMs = 1_000;

const body = '405 Method Not Allowed: CONNECT is not served here\n';

/**
 * A 405 must carry `Allow` (RFC 9110 §15.5.6). CONNECT's target is a host and port, no path any
 * route matches, so it lists the methods the gateway relays (a route's `methods` may narrow them).
 */
const allow = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

const head =
  `HTTP/1.1 405 Method Not Allowed\r\nAllow: ${allow}\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n` +
  `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;

/** A socket of node:http's server: the response it is writing now (node's own field), if any. */
type ServerSocket = Duplex & { _httpMessage?: ServerResponse | null };

/**
 * A listener's `connect` handler. CONNECT asks for a tunnel (RFC 9110 §9.3.6), which a reverse
 * proxy does not offer; without a handler node:http destroys the socket unanswered, where nginx
 * answers 400 and Envoy 404. Here a short 405 (what node:http2 answers an HTTP/2 CONNECT
 * itself), `Connection: close`, and the socket ended, then destroyed after a short grace if the
 * client does not close its side. On a TLS listener the event also carries HTTP/2 CONNECT
 * streams, as a request and its response: those get the same 405 on their stream.
 *
 * @example
 * server.on('connect', refuseConnect);
 */
export function refuseConnect(_req: ListenerRequest, connection: Duplex | Http2ServerResponse): void {
  if (connection instanceof Http2ServerResponse) {
    answer(connection, 405, { allow, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body);
    return;
  }
  connection.on('error', ignoreError);
  refuseWhenAnswered(connection);
}

/**
 * Writes the 405 once the responses to requests pipelined before the CONNECT are sent: responses go
 * in request order (RFC 9112 §9.3.2), and node emits `connect` as soon as it parses the CONNECT,
 * while an earlier request's answer may still be coming. node's server puts each of those answers
 * on the socket when the one before finishes, so this waits again until none is left.
 */
function refuseWhenAnswered(connection: ServerSocket): void {
  const pending = connection._httpMessage;
  if (pending != null && !pending.writableFinished && !connection.destroyed) {
    pending.once('finish', () => refuseWhenAnswered(connection));
    return;
  }
  connection.end(head + body, 'latin1');
  setTimeout(destroyConnection, closeGraceMs, connection).unref();
}

function destroyConnection(connection: Duplex): void {
  connection.destroy();
}

function ignoreError(): void {}
