import { normalizeEscapes, percentEncodeChar } from '@relay/core/transport';

/**
 * A character a path carries raw: RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`), `/`, and
 * `%`, whose escapes `normalizeEscapes` puts in their normal form. Anything else (a space, a
 * non-ASCII letter, `|`, `"` …) has one spelling in a URI: its UTF-8 percent-encoding.
 */
const rawChars = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu;
/** The same with `?` kept: a glob's "one character". */
const rawGlobChars = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%?]/gu;
/** Whether `normalizePath` has anything to do: a character to encode or an escape to normalise. */
const notNormal = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/;

/**
 * A path in the one form routing matches on: characters a URI cannot carry raw percent-encoded
 * (UTF-8, upper-case hex, as HTTP clients send them), then `normalizeEscapes`. Clients send
 * `/caf%C3%A9` for `/café`, and some send `|` raw where others send `%7C`: both sides of a
 * comparison (the request's path, a glob or prefix written decoded) go through here, so each
 * spelling matches the others. A path of unreserved characters, sub-delims, `:`, `@` and `/` is
 * returned as it is, nothing built (the common case: one scan).
 *
 * @example
 * normalizePath('/café/a|b'); // '/caf%C3%A9/a%7Cb'
 * normalizePath('/%7euser/caf%c3%a9'); // '/~user/caf%C3%A9'
 */
export function normalizePath(path: string): string {
  return notNormal.test(path) ? normalizeEscapes(path.replace(rawChars, percentEncodeChar)) : path;
}

/**
 * A path glob in the form `normalizePath` gives a request's path, `?` and `*` kept as glob
 * characters.
 *
 * @example
 * normalizeGlob('/my docs/?.txt'); // '/my%20docs/?.txt'
 */
export function normalizeGlob(glob: string): string {
  return normalizeEscapes(glob.replace(rawGlobChars, percentEncodeChar));
}

/** A space or a non-ASCII character: what node's client refuses (a space) or sends as one Latin-1 byte (`é`). */
const unsendable = /[ \u0080-\u{10FFFF}]/u;
const unsendables = new RegExp(unsendable.source, 'gu');

/**
 * A rewrite's result with its spaces and non-ASCII characters percent-encoded (UTF-8), everything
 * else as it is: other printable characters go as a client may send them, and what the relay
 * refuses in a path (a raw `\`, a control character, a stray `%`) stays for its checks to refuse.
 *
 * @example
 * encodeUnsendable('/café x|y'); // '/caf%C3%A9%20x|y'
 */
export function encodeUnsendable(path: string): string {
  return unsendable.test(path) ? path.replace(unsendables, percentEncodeChar) : path;
}
