import { connectionListed, hopByHopHeaders } from './hop-by-hop.js';
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
  const headers: HeaderRecord = {};
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!.toLowerCase();
    const value = rawHeaders[index + 1]!;
    if (hopByHopHeaders.has(name)) {
      if (name === 'transfer-encoding') facts.chunked = true;
      continue;
    }
    if (name === 'host') {
      facts.host ??= value;
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
