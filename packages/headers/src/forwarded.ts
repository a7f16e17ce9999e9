import type { HeaderValue } from '@relay/core';

/** What `Forwarded` says about the client of this hop (a `ClientInfo` has it). */
export interface HopClient {
  /** The client's IP address, `''` when unknown. */
  readonly address: string;
  /** The client's original `Host`, `''` when unknown. */
  readonly host: string;
  /** The client connection's scheme. */
  readonly scheme: 'http' | 'https';
}

const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An RFC 7239 parameter value: a token as is, anything else as a quoted-string. */
function forwardedValue(value: string): string {
  if (tokenPattern.test(value)) return value;
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The `Forwarded` element (RFC 7239 §4) describing this hop: `for` the client address
 * (`"[v6]"` bracketed and quoted, `unknown` when there is none), `host` the client's
 * original `Host` and `proto` its scheme.
 *
 * @example
 * forwardedElement(request.client); // 'for=203.0.113.7;host="gw.example:8080";proto=https'
 */
export function forwardedElement(client: HopClient): string {
  const address = client.address;
  const node = address === '' ? 'unknown' : address.includes(':') ? `"[${address}]"` : address;
  const host = client.host === '' ? '' : `;host=${forwardedValue(client.host)}`;
  return `for=${node}${host};proto=${client.scheme}`;
}

/**
 * The `received-protocol` of a `Via` entry (RFC 9110 §7.6.3) for a node:http version string:
 * `1.1` stays `1.1`, `2.0` becomes `2`.
 *
 * @example
 * viaProtocol('1.1'); // '1.1'
 */
export function viaProtocol(httpVersion: string | undefined): string {
  if (httpVersion === undefined || httpVersion === '') return '1.1';
  return httpVersion.endsWith('.0') && httpVersion !== '1.0' ? httpVersion.slice(0, -2) : httpVersion;
}

/**
 * Appends `entry` to a list header value (`Via`, `Forwarded`): one line, entries joined with
 * `, `, earlier hops first.
 *
 * @example
 * appendListValue('1.1 edge', '1.1 relay'); // '1.1 edge, 1.1 relay'
 */
export function appendListValue(existing: HeaderValue | undefined, entry: string): string {
  if (existing === undefined || existing === '') return entry;
  return `${typeof existing === 'string' ? existing : existing.join(', ')}, ${entry}`;
}
