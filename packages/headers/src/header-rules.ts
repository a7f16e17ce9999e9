import { isIP } from 'node:net';
import type { HeaderRecord } from '@relay/core';
import { unmapIPv4 } from '@relay/core/transport';
import { checkCallFacts } from './call-facts.js';
import type { HopClient } from './forwarded.js';
import { compileHeaderRules, editHeaders, ownCopy, setExtras, type DirectionRules, type HeadersOptions } from './headers.js';

/**
 * Headers as a plain object, such as Node's `IncomingHttpHeaders` (`proxyRes.headers`) or
 * `OutgoingHttpHeaders`. Names may be in any case; a number is sent as its decimal string.
 */
export type PlainHeaders = Readonly<Record<string, string | readonly string[] | number | undefined>>;

/** The client of this hop, for `Forwarded` (`address`, `host`, `scheme`) and `Via` (`httpVersion`). */
export interface HopFacts {
  /** The client's IP address (`''` when unknown: `for=unknown`). */
  readonly address?: string;
  /** The client's original `Host` (`''` when unknown). */
  readonly host?: string;
  /** The client connection's scheme. */
  readonly scheme?: 'http' | 'https';
  /** The client's HTTP version as node:http gives it (`'1.1'`, `'2.0'`). Default `'1.1'`. */
  readonly httpVersion?: string;
}

const hopNames: readonly string[] = ['address', 'host', 'scheme', 'httpVersion'];

/**
 * The rules of `headers()` for one direction. Each call returns new headers (a `HeaderRecord`
 * with lowercase names, or a new `Headers` for a `Headers` input) and never modifies its input.
 */
export interface HeaderRuleApplier {
  (headers: Headers, hop?: HopFacts): Headers;
  (headers: PlainHeaders, hop?: HopFacts): HeaderRecord;
}

/** The rules of `headers()` without a relay: `request` and `response` apply each direction's rules. */
export interface HeaderRules {
  /** Allow list, drop list, `Forwarded` (needs `hop` with `address`, `host`, `scheme`), `Via`, extra request headers. */
  readonly request: HeaderRuleApplier;
  /** Allow list, drop list, `Via`, extra response headers. */
  readonly response: HeaderRuleApplier;
}

/**
 * The rules of `headers()` as plain synchronous functions, for proxies and clients that are not
 * a relay: the same options, checked here with the same errors, applied in the same order (allow
 * list, drop list, `Forwarded`/`Via`, extra headers). Extra headers must be fixed values: a
 * function value is a `ProxyRequest` hook, and there is none here, so it is refused (compute
 * the value yourself and pass it in a fresh `headerRules`, or set it after the call).
 *
 * @example
 * const rules = headerRules({ dropResponse: ['x-powered-by'], extraResponse: { 'x-frame-options': 'DENY' } });
 * proxyRes.headers = rules.response(proxyRes.headers); // an http-proxy-middleware on.proxyRes hook
 * await fetch(url, { headers: headerRules({ dropRequest: ['cookie'] }).request(new Headers(init.headers)) });
 */
export function headerRules(options: HeadersOptions = {}): HeaderRules {
  const { request, response } = compileHeaderRules(options, 'headerRules');
  refuseFunctions(request);
  refuseFunctions(response);
  return { request: applier(request, true), response: applier(response, false) };
}

function refuseFunctions(rules: DirectionRules | null): void {
  const computed = rules?.extras.find((extra) => extra.compute !== null);
  if (computed !== undefined) {
    throw new TypeError(
      `headerRules: ${computed.option} is a function, which only the headers() stage can call (with its ProxyRequest); give headerRules a fixed value`,
    );
  }
}

function applier(rules: DirectionRules | null, isRequest: boolean): HeaderRuleApplier {
  const where = `headerRules: ${isRequest ? 'request' : 'response'} hop`;
  function applyHeaderRules(input: Headers | PlainHeaders, hop?: HopFacts): Headers | HeaderRecord {
    if (hop !== undefined) checkCallFacts(hop, hopNames, where);
    const record = fromInput(input);
    // `record` is already a copy: only an allow list needs another.
    const headers = rules === null || rules.allow === null ? record : ownCopy(rules, record);
    if (rules !== null) {
      editHeaders(rules, headers, rules.forwarded === null ? null : hopClient(hop), isRequest ? hop?.httpVersion : '1.1');
      setExtras(rules.extras, 0, headers, null, null);
    }
    return input instanceof Headers ? toHeaders(headers) : headers;
  }
  return applyHeaderRules as HeaderRuleApplier;
}

function hopClient(hop: HopFacts | undefined): HopClient {
  if (hop === undefined || typeof hop.scheme !== 'string' || typeof hop.address !== 'string' || typeof hop.host !== 'string') {
    throw new TypeError('headerRules: forwarded needs the client of this hop: request(headers, { address, host, scheme })');
  }
  // `Forwarded: for=` names a node (RFC 7239 §6): raw text (an X-Forwarded-For an app took for the
  // address) could add parameters of the client's choosing. A dual-stack listener's IPv4-mapped
  // address is the IPv4 address the relay's own stage writes.
  const address = hop.address;
  if (address !== '' && address !== 'unknown' && isIP(address) === 0) {
    throw new TypeError(`headerRules: the hop's address must be an IP address, '' or 'unknown', got ${JSON.stringify(address.slice(0, 64))}`);
  }
  const unmapped = unmapIPv4(address);
  return (unmapped === address ? hop : { ...hop, address: unmapped }) as HopClient;
}

/** A record with lowercase names from either input; `set-cookie` always an array. Shares no array with the input. */
function fromInput(input: Headers | PlainHeaders): HeaderRecord {
  const record: HeaderRecord = {};
  if (input instanceof Headers) {
    for (const [name, value] of input) {
      if (name !== 'set-cookie') record[name] = value;
    }
    const cookies = input.getSetCookie();
    if (cookies.length > 0) record['set-cookie'] = cookies;
    return record;
  }
  for (const name in input) {
    const value = input[name];
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const values = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : [...value];
    const existing = record[key];
    // `Content-Type` and `content-type` in one object are one header with two values.
    record[key] = existing === undefined ? values : [...toList(existing), ...toList(values)];
  }
  const cookies = record['set-cookie'] as string | string[] | undefined;
  if (typeof cookies === 'string') record['set-cookie'] = [cookies];
  return record;
}

function toList(value: string | string[]): string[] {
  return typeof value === 'string' ? [value] : value;
}

function toHeaders(record: HeaderRecord): Headers {
  const headers = new Headers();
  for (const name in record) {
    const value = record[name];
    if (value === undefined) continue;
    if (typeof value === 'string') headers.append(name, value);
    else for (const item of value) headers.append(name, item);
  }
  return headers;
}
