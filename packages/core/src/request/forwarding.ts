import { RelayError } from '../errors.js';
import { connectionListed, hopByHopHeaders, inheritedName } from './hop-by-hop.js';
import { assertKnownKeys } from '../known-keys.js';
import { isValidAuthority } from './path.js';
import type { HeaderRecord, Target } from '../types.js';

/** The client's request head as the relay reads it: the headers to forward and two facts besides. */
export interface RequestHead {
  /** The end-to-end headers, as the policy keeps them. */
  readonly headers: HeaderRecord;
  /** The client's `Host` header, if any. */
  host: string | undefined;
  /** The request body is framed with `Transfer-Encoding`. */
  chunked: boolean;
}

/**
 * Copies the client's raw request headers into the record sent upstream, in one pass:
 * hop-by-hop headers and names listed in `Connection` are dropped, `Expect` is dropped
 * (node:http has answered `100 Continue` already), and unless `policy.trusted` so is every
 * client-sent forwarding header (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `True-Client-IP`):
 * the relay writes its own. Throws `ERR_BAD_REQUEST` (400) or `ERR_TRANSFER_CODING` (501)
 * for a head it cannot relay faithfully.
 */
export function readRequestHead(rawHeaders: readonly string[], policy: ForwardingPolicy = edgePolicy): RequestHead {
  const listed = connectionListed(rawHeaders);
  // Removing a listed Content-Length would send the body's bytes with no framing (the upstream reads 0).
  if (listed !== null && listed.includes('content-length')) throw badRequest('Content-Length is named in Connection');
  const headers: HeaderRecord = {};
  const facts: RequestHead = { headers, host: undefined, chunked: false };
  let authority: string | undefined;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!.toLowerCase();
    const value = rawHeaders[index + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      // HTTP/2 pseudo-headers are the request line, never headers; `:authority` stands for Host.
      if (name === ':authority') authority = value;
      continue;
    }
    if (hopByHopHeaders.has(name)) {
      if (name === 'transfer-encoding') readTransferEncoding(value, facts);
      // A client that takes trailers lets the relay ask the upstream for them (RFC 9110 §10.1.4).
      else if (name === 'te' && /\btrailers\b/i.test(value)) headers.te = 'trailers';
      continue;
    }
    if (name === 'host') {
      readHost(value, facts);
      continue;
    }
    if (name === 'expect' || (listed !== null && listed.includes(name))) continue;
    if (!policy.trusted && isForwardingHeader(name)) continue;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    // HTTP/2 cookie crumbs are one field again before any hop that may be HTTP/1.1 (RFC 9113 §8.2.3).
    else if (name === 'cookie') headers.cookie = `${existing as string}; ${value}`;
    else if (typeof existing === 'string') headers[name] = [existing, repeatable(name, value)];
    else if (Array.isArray(existing)) existing.push(repeatable(name, value));
    else inheritedName(headers, name, value);
  }
  if (authority !== undefined) readAuthority(authority, facts);
  return facts;
}

/**
 * RFC 9113 §8.3.1: `:authority` is the target's authority, never a Host beside it; a Host that names
 * another entity makes the request malformed (400, as HAProxy answers), so a relay never routes or
 * forwards by a Host the client's `:authority` contradicts.
 */
function readAuthority(authority: string, facts: RequestHead): void {
  if (facts.host === undefined) {
    readHost(authority, facts);
    return;
  }
  if (sameAuthority(facts.host, authority)) return;
  throw badRequest(':authority and Host name different hosts');
}

/** Equal once lowercased and without a default port (the scheme-based normalization RFC 9113 §8.3.1 asks for). */
function sameAuthority(a: string, b: string): boolean {
  const normal = (value: string) => value.toLowerCase().replace(/:(80|443)$/, '');
  return normal(a) === normal(b);
}

/**
 * RFC 9112 §3.2: a request with more than one `Host` line or an invalid one gets 400, as nginx,
 * Envoy and HAProxy answer.
 */
function readHost(value: string, facts: RequestHead): void {
  if (facts.host !== undefined) throw badRequest('more than one Host header');
  if (!isValidAuthority(value)) throw badRequest('invalid Host header');
  facts.host = value;
}

/**
 * Only `chunked` alone is relayed: another coding (`gzip, chunked`) would be lost when the body
 * is re-framed, so it gets 501 as nginx answers; a repeated header gets 400 (nginx: duplicate).
 */
function readTransferEncoding(value: string, facts: RequestHead): void {
  if (facts.chunked) throw badRequest('more than one Transfer-Encoding header');
  if (value.length !== 7 || value.toLowerCase() !== 'chunked') {
    throw new RelayError('ERR_TRANSFER_CODING', 'a transfer coding other than chunked alone');
  }
  facts.chunked = true;
}

/**
 * A second `Authorization` line gets 400, as nginx answers ("client sent duplicate header line"):
 * an app or stage that checked one credential and an upstream that reads the other would disagree
 * on who is asking.
 */
function repeatable(name: string, value: string): string {
  if (name === 'authorization') throw badRequest('more than one Authorization header');
  return value;
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

/** A header a proxy writes about its client: an edge gateway never takes a client's word for these. */
export function isForwardingHeader(name: string): boolean {
  if (name.charCodeAt(0) === 120 /* x */) return name.startsWith('x-forwarded-') || name === 'x-real-ip';
  return name === 'forwarded' || name === 'true-client-ip';
}

/** The client facts the forwarding headers are made of. */
export interface ForwardingFacts {
  address: string;
  scheme: 'http' | 'https';
  host: string;
  mountPath: string;
  /** The port the client connected to (`X-Forwarded-Port`); 0 when unknown. */
  port?: number;
}

/** Which forwarding headers the relay writes (`createRelay({ forwarded })`); each defaults to `true`. */
export interface ForwardedHeaders {
  /** `X-Forwarded-For`: the client address, appended to a trusted proxy's list. */
  for?: boolean;
  /** `X-Forwarded-Proto`: `http` or `https`, the client's scheme. */
  proto?: boolean;
  /** `X-Forwarded-Host`: the client's original `Host`. */
  host?: boolean;
  /** `X-Forwarded-Port`: the port the client connected to. */
  port?: boolean;
  /** `X-Forwarded-Prefix`: the mount path the relay stripped. */
  prefix?: boolean;
}

/** How the forwarding headers of one request are written; built once, when the relay is built. */
export interface ForwardingPolicy {
  /** Send the client's `Host` upstream instead of the upstream's own. */
  readonly preserveHost: boolean;
  /** The peer is a trusted proxy: its forwarding headers are kept (and `X-Forwarded-For` appended to). */
  readonly trusted: boolean;
  /** The headers written. */
  readonly headers: Readonly<Required<ForwardedHeaders>>;
}

const allHeaders: Readonly<Required<ForwardedHeaders>> = Object.freeze({ for: true, proto: true, host: true, port: true, prefix: true });
const edgePolicy: ForwardingPolicy = Object.freeze({ preserveHost: false, trusted: false, headers: allHeaders });
const forwardedNames: readonly string[] = Object.keys(allHeaders);

/**
 * Reads the `forwarded` option: `true` (default) writes every forwarding header, `false` none,
 * an object chooses (`{ port: false }`). Unknown keys throw, naming the nearest one.
 */
export function resolveForwardedHeaders(value: unknown): Readonly<Required<ForwardedHeaders>> {
  if (value === undefined || value === true) return allHeaders;
  if (value === false) return Object.freeze({ for: false, proto: false, host: false, port: false, prefix: false });
  if (value === null || typeof value !== 'object') throw new TypeError('forwarded must be a boolean or { for, proto, host, port, prefix }');
  assertKnownKeys(value, forwardedNames, 'forwarded');
  const chosen = { ...allHeaders };
  for (const name of forwardedNames as Array<keyof ForwardedHeaders>) {
    const flag = (value as ForwardedHeaders)[name];
    if (flag === undefined) continue;
    if (typeof flag !== 'boolean') throw new TypeError(`forwarded.${name} must be a boolean, got ${typeof flag}`);
    chosen[name] = flag;
  }
  return Object.freeze(chosen);
}

/**
 * Sets the forwarding headers and `Host` on an upstream request record, as `policy` says:
 * appends the client address to `X-Forwarded-For`, sets `X-Forwarded-Proto`, `-Host`, `-Port`
 * and (when mounted) `-Prefix`, and `Host` to the upstream's unless `preserveHost`. From a
 * trusted proxy, its `-Proto`, `-Host` and `-Port` are kept and its `-Prefix` goes before the
 * mount path. Runs after `Connection`-listed names are removed, so a client cannot strip these.
 */
export function setForwardingHeaders(headers: HeaderRecord, client: ForwardingFacts, target: Target, policy: ForwardingPolicy = edgePolicy): void {
  const chosen = policy.headers;
  const keep = policy.trusted;
  if (chosen.for && client.address !== '') {
    const forwardedFor = headers['x-forwarded-for'];
    headers['x-forwarded-for'] =
      forwardedFor === undefined
        ? client.address
        : `${typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(', ')}, ${client.address}`;
  }
  if (chosen.proto && !(keep && headers['x-forwarded-proto'] !== undefined)) headers['x-forwarded-proto'] = client.scheme;
  if (chosen.host && !(keep && headers['x-forwarded-host'] !== undefined) && client.host !== '') headers['x-forwarded-host'] = client.host;
  if (chosen.port && !(keep && headers['x-forwarded-port'] !== undefined) && client.port !== undefined && client.port !== 0) {
    headers['x-forwarded-port'] = String(client.port);
  }
  if (chosen.prefix && client.mountPath !== '') {
    const outer = keep ? headers['x-forwarded-prefix'] : undefined;
    headers['x-forwarded-prefix'] = typeof outer === 'string' && outer !== '/' ? outer.replace(/\/+$/, '') + client.mountPath : client.mountPath;
  }
  headers.host = policy.preserveHost && client.host !== '' ? client.host : target.host;
}
