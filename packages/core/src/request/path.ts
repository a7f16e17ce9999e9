import { RelayError } from '../errors.js';
import { loggedPath } from '../logger.js';
import { encodeNonAscii, hasStrayPercent } from './path-normalize.js';

const SLASH = 47;

/**
 * Normalises a path option (`mountPath`, `upstreamPrefix`, a target's path, a front door's
 * `prefix`): leading `/`, no trailing `/`, `''` for the root, non-ASCII characters
 * percent-encoded as UTF-8 (`/café` is `/caf%C3%A9`, what clients send and what an upstream
 * should get; existing escapes stay as written). Throws a TypeError naming the option when invalid.
 *
 * @example
 * normalizePathOption('/café/', 'mountPath'); // '/caf%C3%A9'
 */
export function normalizePathOption(value: unknown, option: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new TypeError(`${option} must be a string path such as "/api", got ${typeof value}`);
  if (value !== '' && value.charCodeAt(0) !== SLASH) throw new TypeError(`${option} must start with "/", got "${value}"`);
  if (/[?#\s\\]/.test(value)) throw new TypeError(`${option} must be a plain path without "?", "#", "\\" or spaces, got "${value}"`);
  if (hasDotSegment(value) || value.includes('//')) {
    throw new TypeError(`${option} must not contain ".", ".." or empty segments, got "${value}"`);
  }
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === SLASH) end--;
  return encodeNonAscii(value.slice(0, end));
}

/** The path and authority of an absolute-form request target (`http://host/path?q`). */
export interface AbsoluteTarget {
  authority: string;
  pathAndQuery: string;
}

/**
 * Splits an absolute-form request target. Only the path and query are ever forwarded: the
 * authority never chooses the upstream. Throws `ERR_BAD_PATH` for any other form (`*`, garbage).
 */
export function splitAbsoluteForm(target: string): AbsoluteTarget {
  const match = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
  if (match === null) throw new RelayError('ERR_BAD_PATH', `request target is not origin-form or absolute-form: ${pathOnly(target).slice(0, 64)}`);
  const authority = match[1]!;
  // RFC 9110 §4.2.4: userinfo is deprecated in http(s) URIs; RFC 9112 §3.2 makes an invalid target a 400.
  if (authority.includes('@')) throw new RelayError('ERR_BAD_REQUEST', 'userinfo in an absolute-form request target');
  if (!isValidAuthority(authority)) throw new RelayError('ERR_BAD_REQUEST', 'invalid authority in an absolute-form request target');
  const rest = match[2]!;
  return { authority, pathAndQuery: rest === '' || rest.charCodeAt(0) !== SLASH ? `/${rest}` : rest };
}

/** `host [":" port]` of RFC 3986 §3.2.2: an IP-literal, or reg-name characters (an IPv4 address is one). */
const authorityPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

/**
 * True when `value` is a valid `Host` header value or absolute-form authority (RFC 9112 §3.2):
 * `host[:port]` without userinfo, spaces or other characters a URI host cannot hold. `''` is valid.
 */
export function isValidAuthority(value: string): boolean {
  return authorityPattern.test(value);
}

/** Whether an origin-form request target (`/mount/rest?query`) is at or below `mountPath`. */
export function isUnderMount(target: string, mountPath: string): boolean {
  if (!target.startsWith(mountPath)) return false;
  const next = target.charCodeAt(mountPath.length);
  return Number.isNaN(next) || next === SLASH || next === 63 /* ? */;
}

/**
 * Maps a client request target (origin-form, `/mount/rest?query`) to the upstream one
 * (`basePath/rest?query`): strips `mountPath`, joins the rest under `basePath`, keeps the
 * query byte for byte and refuses paths that could leave `basePath`.
 *
 * @throws RelayError `ERR_NOT_MOUNTED` outside `mountPath`, `ERR_BAD_PATH` for unsafe paths or a `#`.
 */
export function mapRequestPath(target: string, mountPath: string, basePath: string): string {
  // Origin-form has no fragment (RFC 9112 §3.2.1); an upstream that parses `..#` as a URL would leave the prefix.
  if (target.indexOf('#') !== -1) throw fragmentError();
  const queryStart = target.indexOf('?');
  let path = queryStart === -1 ? target : target.slice(0, queryStart);
  // A lone "?" is no query: never forward a trailing "?".
  const query = queryStart === -1 || queryStart === target.length - 1 ? '' : target.slice(queryStart);

  if (mountPath !== '') {
    if (!path.startsWith(mountPath) || (path.length > mountPath.length && path.charCodeAt(mountPath.length) !== SLASH)) {
      throw new RelayError('ERR_NOT_MOUNTED', `path is outside the mount path ${mountPath}`);
    }
    path = path.slice(mountPath.length);
  }
  assertSafePath(path);
  if (path === '') return (basePath === '' ? '/' : basePath) + query;
  return basePath + path + query;
}

/**
 * Refuses a path that could reach outside the upstream prefix or name another origin: a
 * `.` or `..` segment in raw, percent-encoded or double-encoded form (also split on `\`,
 * `%2f` and `%5c`, and `..;` as some servers read it), a leading `//`, a NUL byte, an
 * overlong UTF-8 form, or a `%` that starts no escape.
 *
 * @throws RelayError `ERR_BAD_PATH`
 */
export function assertSafePath(path: string): void {
  if (path.length > 1 && path.charCodeAt(1) === SLASH) throw badPath('leading slash or backslash', path);
  // The common case: nothing that could hide a dot segment.
  if (path.indexOf('%') === -1 && path.indexOf('\\') === -1 && path.indexOf('/.') === -1) return;
  // A `%` that starts no escape (`/%6%31dmin`, `/100%`): no two decoders agree on it, and one that
  // keeps it makes a new escape of what follows (RFC 3986 §2.4; nginx answers 400).
  if (hasStrayPercent(path)) throw badPath('malformed percent-encoding', path);
  // A raw `\` is no URI character (RFC 3986 §2); WHATWG URL parsers (node's `new URL`, browsers) read
  // it as `/`, so `/admin\users` passes a guard on `/admin/**` yet reaches /admin/users (Tomcat and
  // Spring's firewall refuse it too).
  if (path.indexOf('\\') !== -1) throw badPath('backslash', path);

  let current = path;
  for (let level = 0; level < 4; level++) {
    if (hasDotSegment(current)) throw badPath('dot segment', path);
    if (current.startsWith('//') || current.startsWith('/\\') || current.startsWith('\\')) {
      throw badPath('leading slash or backslash', path);
    }
    if (current.indexOf('%') === -1) return;
    const decoded = percentDecodeBytes(current);
    if (decoded === current) return;
    current = decoded;
  }
  throw badPath('too many encoding levels', path);
}

/**
 * Checks an upstream request target a stage set (`ProxyRequest.path`, `/path?query`) with the
 * rules a client's path goes through: origin-form, no `#`, and `assertSafePath` on the path part.
 *
 * @example
 * assertSafeUpstreamPath('/v1/users?q=..'); // fine: the query is not a path
 * assertSafeUpstreamPath('/v1/../secret'); // throws ERR_BAD_PATH
 * @throws RelayError `ERR_BAD_PATH`
 */
export function assertSafeUpstreamPath(target: string): void {
  if (target.charCodeAt(0) !== SLASH) throw new RelayError('ERR_BAD_PATH', 'the upstream path must start with "/"');
  if (target.indexOf('#') !== -1) throw fragmentError();
  const queryStart = target.indexOf('?');
  assertSafePath(queryStart === -1 ? target : target.slice(0, queryStart));
}

/** The path of a request target without its query, for log lines (queries often carry tokens). */
export function pathOnly(target: string): string {
  return loggedPath(target, {});
}

function fragmentError(): RelayError {
  return new RelayError('ERR_BAD_PATH', 'unsafe request path: "#" in the request target (a fragment is never sent, RFC 9112 §3.2.1)');
}

function badPath(reason: string, path: string): RelayError {
  return new RelayError('ERR_BAD_PATH', `unsafe request path (${reason}): ${path.slice(0, 128)}`);
}

/** True when a segment (split on `/` and `\`, read up to `;`) is `.` or `..`. */
function hasDotSegment(path: string): boolean {
  let segmentStart = 0;
  for (let index = 0; index <= path.length; index++) {
    const code = index < path.length ? path.charCodeAt(index) : SLASH;
    if (code !== SLASH && code !== 92 /* \ */) continue;
    let end = path.indexOf(';', segmentStart);
    if (end === -1 || end > index) end = index;
    const length = end - segmentStart;
    if (
      (length === 1 && path.charCodeAt(segmentStart) === 46) ||
      (length === 2 && path.charCodeAt(segmentStart) === 46 && path.charCodeAt(segmentStart + 1) === 46)
    ) {
      return true;
    }
    segmentStart = index + 1;
  }
  return false;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * Decodes `%XX` escapes byte for byte (as latin1, so ASCII stays ASCII), refusing the NUL
 * byte and overlong UTF-8 forms that old servers decoded into `.`, `/` or `\`.
 */
function percentDecodeBytes(input: string): string {
  let output = '';
  let previous = -1;
  for (let index = 0; index < input.length; index++) {
    const code = input.charCodeAt(index);
    if (code === 37 /* % */ && index + 2 < input.length) {
      const high = hexValue(input.charCodeAt(index + 1));
      const low = hexValue(input.charCodeAt(index + 2));
      if (high !== -1 && low !== -1) {
        const byte = high * 16 + low;
        if (byte === 0) throw badPath('NUL byte', input);
        if (isOverlong(previous, byte)) throw badPath('overlong UTF-8', input);
        output += String.fromCharCode(byte);
        previous = byte;
        index += 2;
        continue;
      }
    }
    output += input[index];
    previous = code;
  }
  return output;
}

function isOverlong(previous: number, byte: number): boolean {
  if (previous === 0xc0 || previous === 0xc1) return byte >= 0x80 && byte <= 0xbf;
  if (previous === 0xe0) return byte >= 0x80 && byte <= 0x9f;
  if (previous === 0xf0) return byte >= 0x80 && byte <= 0x8f;
  return false;
}
