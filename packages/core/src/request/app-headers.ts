import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { RelayError } from '../errors.js';
import { hopByHopHeaders } from './hop-by-hop.js';
import { isValidAuthority } from './path.js';

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
 * gone; a changed or added one takes the app's value. Names are compared case-insensitively, as
 * http-proxy sends `req.headers` through `setHeader`: when the app sets `X-User-Id` beside the
 * client's `x-user-id`, the later key wins and the client's lines are gone. Only the object's own
 * keys count, never its prototype's (a client's `__proto__` line is not an edit). Hop-by-hop
 * headers and `Content-Length` stay as the client sent them: they frame the body node:http is
 * reading and describe the client's connection, so an edit must not change what the relay reads
 * or sends as framing. On HTTP/2 a `Host` the app set stands for the request's authority, as it
 * does on HTTP/1.1: the client's `:authority` is left out so the two do not read as a conflict
 * the client sent. The result goes through `readRequestHead`, so the Connection, forwarding and
 * Host rules still apply.
 *
 * @throws RelayError `ERR_INTERNAL` (500) when a name or value the app set cannot be sent (not a
 * token, CR, LF or NUL in a value, a `Host` that is not one valid authority): the app's fault,
 * not the client's, so never a 400.
 *
 * @example
 * // raw: ['Authorization', 'Bearer x', 'Accept', 'text/html']; req.headers: { accept: 'text/html', 'x-user-id': '42' }
 * appRawHeaders(req, req.headers); // ['Accept', 'text/html', 'x-user-id', '42']
 */
export function appRawHeaders(req: IncomingMessage, edited: IncomingHttpHeaders): readonly string[] {
  const raw = req.rawHeaders;
  const received = nodeValues(raw, duplicateRule(req));
  const view = lowercaseView(edited);
  const hostSet = setByApp(view.get('host'), received.get('host'));
  const lines: string[] = [];
  let appSet: Set<string> | null = null;
  for (let index = 0; index < raw.length; index += 2) {
    const rawName = raw[index]!;
    const name = rawName.toLowerCase();
    if (name.charCodeAt(0) === 58 /* : */) {
      if (!(hostSet && name === ':authority')) lines.push(rawName, raw[index + 1]!);
      continue;
    }
    if (keptAsSent(name)) {
      lines.push(rawName, raw[index + 1]!);
      continue;
    }
    const value = view.get(name);
    if (value === undefined || value === null) continue;
    if (sameValue(value, received.get(name)!)) lines.push(rawName, raw[index + 1]!);
    else if (!(appSet ??= new Set()).has(name)) {
      appSet.add(name);
      pushAppValue(lines, name, value);
    }
  }
  for (const [name, value] of view) {
    if (received.has(name) || name.charCodeAt(0) === 58 || keptAsSent(name)) continue;
    if (value === undefined || value === null) continue;
    (appSet ??= new Set()).add(name);
    pushAppValue(lines, name, value);
  }
  if (appSet !== null) unlistFromConnection(lines, appSet);
  return lines;
}

/**
 * A header the app set is the gateway's, not something of the client's connection: a client that
 * names it in `Connection` (`Connection: X-User-Id`) must not make the relay drop what an auth
 * middleware put there. The client's own lines of that name are already gone (the app's replaced them).
 */
function unlistFromConnection(lines: string[], appSet: ReadonlySet<string>): void {
  for (let index = 0; index < lines.length; index += 2) {
    if (lines[index]!.length !== 10 || lines[index]!.toLowerCase() !== 'connection') continue;
    const tokens = lines[index + 1]!.split(',');
    lines[index + 1] = tokens.filter((token) => !appSet.has(token.trim().toLowerCase())).join(',');
  }
}

/**
 * `req.headers` by lowercase name, own keys only, the later key winning as `setHeader` in key
 * order makes it (http-proxy): `{ 'x-user-id': '1', 'X-User-Id': '42' }` is `x-user-id: 42`.
 */
function lowercaseView(edited: IncomingHttpHeaders): Map<string, unknown> {
  const view = new Map<string, unknown>();
  for (const key of Object.keys(edited)) view.set(key.toLowerCase(), edited[key]);
  return view;
}

/** The app added or changed this header (a deleted one is not set). */
function setByApp(value: unknown, received: NodeValue | undefined): boolean {
  if (value === undefined || value === null) return false;
  return received === undefined || !sameValue(value, received);
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

/** RFC 9110 §5.1: a field name is a token (lowercase here). */
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** RFC 9110 §5.5: CR, LF and NUL never appear in a field value; sent, they would split the head. */
const unsafeValue = /[\r\n\0]/;

/**
 * The app's value as header lines: one per array item; a number (`= 42`) as its text. Checked
 * here, where the fault is known to be the app's: `readRequestHead` would blame the client (400).
 */
function pushAppValue(lines: string[], name: string, value: unknown): void {
  if (!tokenPattern.test(name)) throw appError(`a header name set in req.headers is not a token: ${JSON.stringify(name.slice(0, 64))}`);
  if (name === 'host') {
    if (typeof value !== 'string' || !isValidAuthority(value)) throw appError('the Host set in req.headers is not one valid authority');
    lines.push(name, value);
  } else if (Array.isArray(value)) {
    for (const item of value) lines.push(name, checkedValue(name, item));
  } else lines.push(name, checkedValue(name, value));
}

function checkedValue(name: string, value: unknown): string {
  const text = String(value);
  if (unsafeValue.test(text)) throw appError(`the ${name} header set in req.headers holds CR, LF or NUL`);
  return text;
}

function appError(message: string): RelayError {
  return new RelayError('ERR_INTERNAL', `${message}: the app's middleware, not the client, set it`);
}
