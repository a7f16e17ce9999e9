import { parseTarget, type Target } from '@relay/core';
import type { TargetSpec } from './options.js';
import { checkObject, readDelay, readInteger } from './options.js';

/** A static target, checked: its URL, weight and parsed `Target`. */
export interface StaticEntry {
  readonly url: string;
  readonly weight: number;
  readonly target: Target;
}

/** A DNS target, checked. */
export interface DnsEntry {
  /** The spec as given, the key that keeps one resolver across `setTargets` calls. */
  readonly spec: string;
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  /** The `Host` header its addresses are sent. */
  readonly host: string;
  readonly interval: number;
  readonly weight: number;
}

/** Every target of a `targets` list, checked once. */
export interface ParsedTargets {
  readonly statics: StaticEntry[];
  readonly dns: DnsEntry[];
}

/**
 * Checks a `targets` list: each a URL, `{ url, weight }` or `{ dns, interval, weight }`. Throws a
 * TypeError naming the bad entry; a URL with a path is refused, the relay's `targetBaseUrl` carries it.
 *
 * @example
 * parseSpecs(['http://10.0.0.1:8000', { url: 'http://10.0.0.2:8000', weight: 2 }]);
 */
export function parseSpecs(specs: readonly TargetSpec[]): ParsedTargets {
  if (!Array.isArray(specs)) throw new TypeError('balance: targets must be an array');
  const parsed: ParsedTargets = { statics: [], dns: [] };
  const seen = new Set<string>();
  specs.forEach((spec, index) => {
    const where = `balance: targets[${index}]`;
    const entry = typeof spec === 'string' ? staticEntry(spec, 1, where) : objectEntry(spec, where);
    const key = 'spec' in entry ? entry.spec : entry.url;
    if (seen.has(key)) throw new TypeError(`${where}: ${key} is listed twice`);
    seen.add(key);
    if ('spec' in entry) parsed.dns.push(entry);
    else parsed.statics.push(entry);
  });
  return parsed;
}

function objectEntry(spec: unknown, where: string): StaticEntry | DnsEntry {
  checkObject(spec, ['url', 'weight', 'dns', 'interval'], where);
  const weight = readInteger(spec.weight, `${where}.weight`, 1);
  if (typeof spec.url === 'string' && spec.dns === undefined && spec.interval === undefined) return staticEntry(spec.url, weight, where);
  if (typeof spec.dns === 'string' && spec.url === undefined) return dnsEntry(spec.dns, readDelay(spec.interval, `${where}.interval`, 30_000), weight, where);
  throw new TypeError(`${where} needs either url or dns (a string)`);
}

function staticEntry(url: string, weight: number, where: string): StaticEntry {
  const target = parseOrigin(url, where);
  return { url: target.origin, weight, target };
}

function dnsEntry(spec: string, interval: number, weight: number, where: string): DnsEntry {
  const target = parseOrigin(spec, where);
  if (target.socketPath !== undefined) throw new TypeError(`${where}: dns needs an http(s) URL, not a unix: socket`);
  return { spec: target.origin, protocol: target.protocol, hostname: target.hostname, port: target.port, host: target.host, interval, weight };
}

function parseOrigin(url: string, where: string): Target {
  let target: Target;
  try {
    target = parseTarget(url);
  } catch (error) {
    throw new TypeError(`${where}: ${(error as Error).message}`);
  }
  if (target.basePath !== '') throw new TypeError(`${where}: ${url} has a path; give origins only, the relay's targetBaseUrl carries the path`);
  return target;
}

/**
 * The `Target` of one address of a DNS name: connections go to the address, `Host` (and TLS SNI
 * via the relay's `tls.servername`) stays the name.
 *
 * @example
 * addressTarget(entry, '10.0.0.7'); // { hostname: '10.0.0.7', host: 'app.internal:8000', … }
 */
export function addressTarget(entry: DnsEntry, address: string): Target {
  const literal = address.includes(':') ? `[${address}]` : address;
  const parsed = parseTarget(`${entry.protocol}//${literal}:${entry.port}`);
  return { ...parsed, host: entry.host };
}

/**
 * The `Target` of an address of a DNS name given as the origin a member of it has
 * (`TargetState.url`, `http://[::1]:8000`), as `addressTarget` makes it.
 *
 * @example
 * originTarget(entry, 'http://10.0.0.7:8000'); // { hostname: '10.0.0.7', host: 'app.internal:8000', … }
 */
export function originTarget(entry: DnsEntry, origin: string): Target {
  return { ...parseTarget(origin), host: entry.host };
}
