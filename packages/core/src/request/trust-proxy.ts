import { BlockList, SocketAddress, isIP } from 'node:net';

/**
 * Which immediate peers are trusted proxies, whose forwarding headers (`X-Forwarded-*`,
 * `Forwarded`, `X-Real-IP`, `True-Client-IP`) are kept: `false` (an edge gateway: none),
 * `true` (every peer) or a list of addresses, CIDR ranges and the names `loopback`, `linklocal`
 * and `uniquelocal` (as Express's `trust proxy` reads them).
 */
export type TrustProxy = boolean | readonly string[];

/** The ranges behind the names Express's `trust proxy` accepts. */
const namedRanges: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * Reads the `trustProxy` option once, when the relay is built: `false`, `true`, or a
 * `BlockList` of the trusted ranges (checked against the peer's address per request).
 * Throws a TypeError naming the entry that is neither an address, a CIDR range nor a name.
 */
export function resolveTrustProxy(value: unknown): boolean | BlockList {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (!Array.isArray(value)) {
    throw new TypeError('trustProxy must be a boolean or a list of addresses and CIDR ranges, e.g. ["10.0.0.0/8", "loopback"]');
  }
  const list = new BlockList();
  value.forEach((entry: unknown, index) => {
    if (typeof entry !== 'string') throw new TypeError(`trustProxy[${index}] must be a string, got ${typeof entry}`);
    for (const range of namedRanges[entry] ?? [entry]) addRange(list, range, `trustProxy[${index}]`);
  });
  return list;
}

function addRange(list: BlockList, range: string, option: string): void {
  const slash = range.indexOf('/');
  const address = slash === -1 ? range : range.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new TypeError(`${option} must be an IP address, a CIDR range or loopback/linklocal/uniquelocal, got "${range}"`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (slash === -1) {
    list.addAddress(address, type);
    return;
  }
  const bits = range.slice(slash + 1);
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) {
    throw new TypeError(`${option} has an invalid prefix length, got "${range}"`);
  }
  list.addSubnet(address, prefix, type);
}

/** True when `trust` trusts the peer at `address` (already unmapped by `unmapIPv4`). */
export function trustsPeer(trust: boolean | BlockList, address: string): boolean {
  if (typeof trust === 'boolean') return trust;
  return address !== '' && trust.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}

/**
 * An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, what a dual-stack listener reports) as the
 * IPv4 address it is; any other address unchanged.
 *
 * @example
 * unmapIPv4('::ffff:203.0.113.7'); // '203.0.113.7'
 */
export function unmapIPv4(address: string): string {
  return address.length > 7 && address.charCodeAt(0) === 58 /* : */ && address.startsWith('::ffff:') && address.includes('.', 7)
    ? address.slice(7)
    : address;
}

/**
 * The client's address as the trusted proxies in front report it: with `peer` trusted, the
 * `X-Forwarded-For` list (`forwardedFor`, the trusted peer's, every line joined) is walked from the
 * right, skipping the addresses `trust` trusts, and the first one it does not trust is the client;
 * a list whose every address is trusted gives its leftmost (nginx's `real_ip_recursive on`, Express's
 * proxy-addr). Empty elements are skipped (RFC 9110 §5.6.1); an element that is not a bare IP address
 * (`unknown`, a port, brackets, garbage) ends the walk, and the last address it accepted is the client:
 * the hop that passed the garbage on, never the garbage. An untrusted `peer` is the client.
 * IPv6 addresses are canonical (RFC 5952, zone id dropped), IPv4-mapped ones IPv4.
 *
 * @example
 * resolveClientAddress(true, '10.0.0.2', '203.0.113.7, 10.0.0.1'); // '203.0.113.7': every hop is trusted, the leftmost
 */
export function resolveClientAddress(trust: boolean | BlockList, peer: string, forwardedFor: string): string {
  if (!trustsPeer(trust, peer)) return peer;
  let client = peer;
  let end = forwardedFor.length;
  while (end > 0) {
    const comma = forwardedFor.lastIndexOf(',', end - 1);
    const element = forwardedFor.slice(comma + 1, end).trim();
    end = comma;
    if (element === '') continue;
    const address = canonicalAddress(element);
    if (address === null) break;
    client = address;
    if (!trustsPeer(trust, address)) break;
  }
  return client;
}

/** A bare IP address in the form the socket reports one (IPv6 canonical, IPv4-mapped as IPv4), or `null`. */
function canonicalAddress(text: string): string | null {
  const family = isIP(text);
  if (family === 4) return text;
  if (family === 0) return null;
  try {
    return unmapIPv4(new SocketAddress({ address: text, family: 'ipv6' }).address);
  } catch {
    return null; // isIP and SocketAddress disagreeing must not fail the request
  }
}
