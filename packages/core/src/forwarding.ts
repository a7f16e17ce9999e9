import { RelayError } from './errors.js';
import { connectionListed, hopByHopHeaders } from './hop-by-hop.js';
import { isValidAuthority } from './path.js';
import type { HeaderRecord, Target } from './types.js';

/** What reading the client's request head finds besides the headers themselves. */
export interface RequestHeadFacts {
  /** The client's `Host` header, if any. */
  host: string | undefined;
  /** The request body is framed with `Transfer-Encoding`. */
  chunked: boolean;
}

/**
 * Copies the client's raw request headers into the record sent upstream, in one pass:
 * hop-by-hop headers and names listed in `Connection` are dropped, `Expect` is dropped
 * (node:http has answered `100 Continue` already) and so is any client-sent
 * `X-Forwarded-Prefix` (the relay sets its own).
 */
export function copyRequestHeaders(rawHeaders: readonly string[], facts: RequestHeadFacts): HeaderRecord {
  const listed = connectionListed(rawHeaders);
  // Removing a listed Content-Length would send the body's bytes with no framing (the upstream reads 0).
  if (listed !== null && listed.includes('content-length')) throw badRequest('Content-Length is named in Connection');
  const headers: HeaderRecord = {};
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!.toLowerCase();
    const value = rawHeaders[index + 1]!;
    if (hopByHopHeaders.has(name)) {
      if (name === 'transfer-encoding') readTransferEncoding(value, facts);
      continue;
    }
    if (name === 'host') {
      readHost(value, facts);
      continue;
    }
    if (name === 'expect' || name === 'x-forwarded-prefix' || (listed !== null && listed.includes(name))) continue;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (typeof existing === 'string') headers[name] = [existing, value];
    else existing.push(value);
  }
  return headers;
}

/**
 * RFC 9112 §3.2: a request with more than one `Host` line or an invalid one gets 400, as nginx,
 * Envoy and HAProxy answer.
 */
function readHost(value: string, facts: RequestHeadFacts): void {
  if (facts.host !== undefined) throw badRequest('more than one Host header');
  if (!isValidAuthority(value)) throw badRequest('invalid Host header');
  facts.host = value;
}

/**
 * Only `chunked` alone is relayed: another coding (`gzip, chunked`) would be lost when the body
 * is re-framed, so it gets 501 as nginx answers; a repeated header gets 400 (nginx: duplicate).
 */
function readTransferEncoding(value: string, facts: RequestHeadFacts): void {
  if (facts.chunked) throw badRequest('more than one Transfer-Encoding header');
  if (value.length !== 7 || value.toLowerCase() !== 'chunked') {
    throw new RelayError('ERR_TRANSFER_CODING', 'a transfer coding other than chunked alone');
  }
  facts.chunked = true;
}

function badRequest(message: string): RelayError {
  return new RelayError('ERR_BAD_REQUEST', message);
}

/** What the server keeps of a request's header list: node:http drops every header after `maxHeadersCount`. */
interface HeaderListSource {
  readonly rawHeaders: readonly string[];
  readonly socket: object | null;
}

/**
 * Throws `ERR_BAD_REQUEST` when the request has as many header lines as the server collects
 * (node:http stops at `maxHeadersCount`, 1 000 lines by default, and drops the rest): a dropped
 * `Content-Length` would make the relay forward an empty body while the client sent one.
 */
export function assertHeaderListComplete(req: HeaderListSource): void {
  const limit = (req.socket as { server?: { maxHeadersCount?: number | null } } | null)?.server?.maxHeadersCount;
  // node:http's parser keeps 2 000 entries (names and values) unless the server sets a count.
  const entries = typeof limit === 'number' ? limit * 2 : 2000;
  if (entries > 0 && req.rawHeaders.length >= entries) {
    throw badRequest(`more request header lines than the server keeps (${entries / 2})`);
  }
}

/** The client facts the forwarding headers are made of. */
export interface ForwardingFacts {
  address: string;
  scheme: 'http' | 'https';
  host: string;
  mountPath: string;
}

/**
 * Sets the forwarding headers and `Host` on an upstream request record: appends the client
 * address to `X-Forwarded-For`, sets `X-Forwarded-Proto`, `X-Forwarded-Host` and (when
 * mounted) `X-Forwarded-Prefix`, and `Host` to the upstream's unless `preserveHost`.
 * Runs after `Connection`-listed names are removed, so a client cannot strip these.
 */
export function setForwardingHeaders(headers: HeaderRecord, client: ForwardingFacts, target: Target, preserveHost: boolean): void {
  const forwardedFor = headers['x-forwarded-for'];
  if (client.address !== '') {
    headers['x-forwarded-for'] =
      forwardedFor === undefined
        ? client.address
        : `${typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(', ')}, ${client.address}`;
  }
  headers['x-forwarded-proto'] = client.scheme;
  if (client.host !== '') headers['x-forwarded-host'] = client.host;
  else delete headers['x-forwarded-host'];
  if (client.mountPath !== '') headers['x-forwarded-prefix'] = client.mountPath;
  headers.host = preserveHost && client.host !== '' ? client.host : target.host;
}
