import type { OutgoingHttpHeader, ServerResponse } from 'node:http';

/**
 * Headers that describe the body, which is the upstream's: an app's value would mislabel or
 * misframe it (a `Content-Length` the upstream's body does not have).
 */
const bodyHeaders = new Set(['content-type', 'content-length', 'transfer-encoding']);

/**
 * Puts a header the app set before the relay (CORS, a request id) on the Node response, where
 * the relay's `writeHead` merges it with the upstream's head: on a clash the upstream's value
 * wins (node:http lets `writeHead` override `setHeader`), as with `@fastify/http-proxy`, whose
 * `reply.headers(upstream)` overwrites the app's; `Set-Cookie` lines go beside the upstream's (core
 * keeps both). Headers of the body are never taken from the app.
 *
 * @example
 * for (const [name, value] of Object.entries(reply.getHeaders())) setAppHeader(reply.raw, name, value);
 */
export function setAppHeader(res: ServerResponse, name: string, value: OutgoingHttpHeader | undefined): void {
  if (value === undefined || bodyHeaders.has(name.toLowerCase())) return;
  res.setHeader(name, value);
}
