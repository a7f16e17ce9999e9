import { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { answer, type ListenerRequest } from './answer.js';

/** How long a refused CONNECT's connection may take to close after its answer before it is destroyed. */
const closeGraceMs = 1_000;

const body = '405 Method Not Allowed: CONNECT is not served here\n';

const head =
  'HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n' +
  `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;

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
    answer(connection, 405, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body);
    return;
  }
  connection.on('error', ignoreError);
  connection.end(head + body, 'latin1');
  setTimeout(destroyConnection, closeGraceMs, connection).unref();
}

function destroyConnection(connection: Duplex): void {
  connection.destroy();
}

function ignoreError(): void {}
