// The two charsets a buffered text transform rewrites, as browsers read them (the WHATWG Encoding
// Standard): UTF-8, and windows-1252, which is what `iso-8859-1`, `latin1` and `us-ascii` labels mean
// there. Both directions come from the standard's table, not TextDecoder: Node 20.18.3 and later
// decode windows-1252 as Latin-1 (nodejs/node#60888), € as U+0080.
import type { HeaderValue } from '@relay/core';

/** A charset the buffered transforms decode and encode text in. */
export type TextCharset = 'utf-8' | 'windows-1252';

const utf8Labels = new Set(['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8']);
const windows1252Labels = new Set([
  'windows-1252', 'x-cp1252', 'cp1252', 'iso-8859-1', 'iso8859-1', 'iso88591', 'iso_8859-1', 'iso_8859-1:1987', 'iso-ir-100',
  'l1', 'latin1', 'csisolatin1', 'ibm819', 'cp819', 'us-ascii', 'ascii', 'ansi_x3.4-1968',
]);

/**
 * The charset a `charset` parameter (lowercased) names, by the WHATWG labels; `null` for one this
 * package does not rewrite. No parameter is UTF-8 (what a body that is not UTF-8 becomes: `bodyCharset`).
 *
 * @example
 * charsetOfLabel('iso-8859-1'); // 'windows-1252'
 */
export function charsetOfLabel(label: string): TextCharset | null {
  if (label === '' || utf8Labels.has(label)) return 'utf-8';
  return windows1252Labels.has(label) ? 'windows-1252' : null;
}

// Bytes 0x80–0x9F of windows-1252 (index-windows-1252.txt); the other bytes are their own code point.
// 0x81, 0x8D, 0x8F, 0x90 and 0x9D are the C1 controls themselves, so every byte decodes and encodes back.
const highBytes = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
const highChars = highBytes.map((code) => String.fromCharCode(code));
const byteOfChar = new Map(highBytes.map((code, index) => [code, 0x80 + index]));

/**
 * Decodes windows-1252 bytes: every byte to one character, so `encodeWindows1252` gives the same bytes back.
 *
 * @example
 * decodeWindows1252(Buffer.from([0x93, 0x80, 0x94])); // '“€”'
 */
export function decodeWindows1252(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[\x80-\x9f]/g, highChar);
}

function highChar(char: string): string {
  return highChars[char.charCodeAt(0) - 0x80]!;
}

/**
 * Encodes text as windows-1252, or `null` when it holds a character windows-1252 has no byte for.
 *
 * @example
 * encodeWindows1252('5 €'); // <35 20 80>
 */
export function encodeWindows1252(text: string): Buffer | null {
  // Latin-1 proper (ASCII, U+00A0–U+00FF) is byte for byte: the usual text needs no loop.
  if (!/[^\x00-\x7f\xa0-\xff]/.test(text)) return Buffer.from(text, 'latin1');
  const bytes = Buffer.allocUnsafe(text.length);
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    const byte = code < 0x80 || (code >= 0xa0 && code <= 0xff) ? code : byteOfChar.get(code);
    if (byte === undefined) return null;
    bytes[index] = byte;
  }
  return bytes;
}

/**
 * A `Content-Type` value with its `charset` parameter set to `label` (replaced, or added).
 *
 * @example
 * withCharset('text/html; charset=ISO-8859-1', 'utf-8'); // 'text/html; charset=utf-8'
 */
export function withCharset(contentType: HeaderValue, label: string): string {
  const value = typeof contentType === 'string' ? contentType : (contentType[0] ?? '');
  const parameter = /;\s*charset\s*=\s*(?:"[^"]*"|[^;\s]*)/i;
  return parameter.test(value) ? value.replace(parameter, `; charset=${label}`) : `${value}; charset=${label}`;
}
