import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** A request as a listener gets it: HTTP/1.1, or HTTP/2 through node:http2's compatibility API (a TLS listener). */
export type ListenerRequest = IncomingMessage | Http2ServerRequest;

/** The response of a `ListenerRequest`. */
export type ListenerResponse = ServerResponse | Http2ServerResponse;

/**
 * What the gateway's own answers use of a response: the part node:http's and node:http2's
 * responses share (their `writeHead` overloads differ, so neither type calls the other's).
 */
interface Answerable {
  writeHead(status: number, headers: OutgoingHttpHeaders): { end(body: string): unknown };
}

/**
 * Writes one whole answer, on HTTP/1.1 or HTTP/2 alike.
 *
 * @example
 * answer(res, 200, { 'content-type': 'text/plain' }, 'ok\n');
 */
export function answer(res: ListenerResponse, status: number, headers: OutgoingHttpHeaders, body: string): void {
  const target: Answerable = res;
  target.writeHead(status, headers).end(body);
}

