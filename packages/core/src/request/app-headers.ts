import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { hopByHopHeaders } from './hop-by-hop.js';

/**
 * Headers node:http keeps the first line of when a client repeats them (`_addHeaderLine` in
 * node's `_http_incoming.js`, Node 20), unless the server sets `joinDuplicateHeaders`.
 */
const http1Singletons: ReadonlySet<string> = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

/** The same for node:http2 (`kSingleValueHeaders` in node's `internal/http2/util.js`, Node 20). */
const http2Singletons: ReadonlySet<string> = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method',
  'age', 'authorization', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-md5', 'content-range', 'content-type', 'date', 'dnt', 'etag', 'expires', 'from', 'host',
  'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified',
  'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk',
  'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/** What node:http has put in `req.headers` for one name, built from the raw lines as node builds it. */
type NodeValue = string | string[];

/**
 * The client's raw header lines with the app's edits to `req.headers` applied (middleware before a
 * front door: an auth step adds `X-User-Id`, deletes `Authorization`). A name whose value is still
 * what node:http made of the raw lines keeps those lines (order, duplicates); a deleted name is
 * gone; a changed or added one takes the app's value. Hop-by-hop headers and `Content-Length`
 * stay as the client sent them: they frame the body node:http is reading and describe the
 * client's connection, so an edit must not change what the relay reads or sends as framing. The
 * result goes through `readRequestHead`, so the Connection, forwarding and Host rules still apply.
 *
 * @example
 * // raw: ['Authorization', 'Bearer x', 'Accept', 'text/html']; req.headers: { accept: 'text/html', 'x-user-id': '42' }
 * appRawHeaders(req, req.headers); // ['Accept', 'text/html', 'x-user-id', '42']
 */
export function appRawHeaders(req: IncomingMessage, edited: IncomingHttpHeaders): readonly string[] {
  const raw = req.rawHeaders;
  const received = nodeValues(raw, duplicateRule(req));
  const lines: string[] = [];
  let replaced: Set<string> | null = null;
  for (let index = 0; index < raw.length; index += 2) {
    const rawName = raw[index]!;
    const name = rawName.toLowerCase();
    if (name.charCodeAt(0) === 58 /* : */ || keptAsSent(name)) {
      lines.push(rawName, raw[index + 1]!);
      continue;
    }
    const value = edited[name] as unknown;
    if (value === undefined || value === null) continue;
    if (sameValue(value, received.get(name)!)) lines.push(rawName, raw[index + 1]!);
    else if (!(replaced ??= new Set()).has(name)) {
      replaced.add(name);
      pushValue(lines, name, value);
    }
  }
  for (const key in edited) {
    const name = key.toLowerCase();
    if ((name === key && received.has(name)) || name.charCodeAt(0) === 58 || keptAsSent(name)) continue;
    const value = edited[key] as unknown;
    if (value !== undefined && value !== null) pushValue(lines, name, value);
  }
  return lines;
}

/** Headers an app's edit never changes: connection-level ones and the body's framing. */
function keptAsSent(name: string): boolean {
  return hopByHopHeaders.has(name) || name === 'content-length';
}

/** Which names node:http keeps only the first line of: `null` when it joins every repeat. */
function duplicateRule(req: IncomingMessage): ReadonlySet<string> | null {
  if (req.httpVersionMajor === 2) return http2Singletons;
  return (req as { joinDuplicateHeaders?: boolean | null }).joinDuplicateHeaders === true ? null : http1Singletons;
}

/** Each lowercase name's value in `req.headers` as node:http made it from the raw lines. */
function nodeValues(raw: readonly string[], singletons: ReadonlySet<string> | null): Map<string, NodeValue> {
  const values = new Map<string, NodeValue>();
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!.toLowerCase();
    const value = raw[index + 1]!;
    const existing = values.get(name);
    if (name === 'set-cookie') {
      if (existing === undefined) values.set(name, [value]);
      else (existing as string[]).push(value);
    } else if (existing === undefined) values.set(name, value);
    else if (name === 'cookie') values.set(name, `${existing as string}; ${value}`);
    else if (singletons === null || !singletons.has(name)) values.set(name, `${existing as string}, ${value}`);
  }
  return values;
}

function sameValue(value: unknown, received: NodeValue): boolean {
  if (typeof received === 'string') return value === received;
  if (!Array.isArray(value) || value.length !== received.length) return false;
  return value.every((item, index) => item === received[index]);
}

/** The app's value as header lines: one per array item; a number (`= 42`) as its text. */
function pushValue(lines: string[], name: string, value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) lines.push(name, String(item));
  } else lines.push(name, String(value));
}
