/**
 * Text pieces of access log lines, built for a line per request: JSON strings without a
 * `JSON.stringify` call when nothing needs escaping, and timestamps whose date part is formatted
 * once per second (`Date#toISOString` alone cost about a microsecond per line).
 */

/** A character JSON escapes: controls, `"`, `\`, and surrogates (a lone one becomes a `\u` escape with four hex digits). */
const needsEscape = /[\x00-\x1f"\\\ud800-\udfff]/;

/** `value` as a JSON string literal. */
export function jsonString(value: string): string {
  return jsonStringOf(value, value);
}

/**
 * `jsonString(value)` for a `value` built from `source` without adding a character JSON escapes
 * (the logged path: the client's target, its query values replaced). The scan runs on `source`,
 * one flat string from the parser, not on `value`, a concatenation the scan would first copy
 * into one piece.
 */
export function jsonStringOf(value: string, source: string): string {
  return needsEscape.test(source) ? JSON.stringify(value) : `"${value}"`;
}

/** A character outside ASCII, and one that is not a byte (a header a stage set, not node's parser). */
const nonAscii = /[\x80-\xff]/;
const notByte = /[^\x00-\xff]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A request header's value as the client wrote it. Node reads header bytes one character each
 * (latin1), so a UTF-8 `Café` arrives as `CafÃ©`; a JSON line holds text, not bytes, so bytes that
 * are valid UTF-8 (what browsers and curl send) are read as UTF-8, as nginx's `escape=json` and
 * Envoy's JSON logs pass them through. Any other bytes stay one character each: ISO-8859-1, the
 * historical reading of obs-text (RFC 9110 §5.5), with no byte lost.
 */
export function clientText(value: string): string {
  if (!nonAscii.test(value) || notByte.test(value)) return value;
  try {
    return utf8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}

/**
 * `jsonString` of the last value seen, kept: a field that repeats from line to line (the client's
 * address, its `user-agent`) is escaped once instead of scanned on every line. A memo of a request
 * header's value (`header`) reads it as the client wrote it (`clientText`), also only when it changes.
 */
export class JsonMemo {
  private value = '';
  private json = '""';

  constructor(private readonly header = false) {}

  of(value: string): string {
    if (value !== this.value) {
      this.value = value;
      this.json = jsonString(this.header ? clientText(value) : value);
    }
    return this.json;
  }
}

/** A timestamp formatter that reuses the text of the current second. */
class SecondCache {
  private second = Number.NaN;
  private text = '';

  constructor(private readonly format: (second: number) => string) {}

  /** The formatted text of the whole second holding `time` (ms since the epoch). */
  of(time: number): string {
    const second = Math.floor(time / 1000);
    if (second !== this.second) {
      this.second = second;
      this.text = this.format(second * 1000);
    }
    return this.text;
  }
}

// `2026-12-01T09:00:00.` : the ISO text up to the milliseconds.
const isoSeconds = new SecondCache((time) => new Date(time).toISOString().slice(0, 20));

/** `time` (ms since the epoch) as `Date#toISOString` writes it, in UTC with milliseconds. */
export function isoTime(time: number): string {
  const millis = Math.floor(time) % 1000;
  return `${isoSeconds.of(time)}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

const clfSeconds = new SecondCache((time) => {
  const date = new Date(time);
  return `${two(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
});

/** `10/Oct/2000:13:55:36 +0000`, in UTC: the Common Log Format time. */
export function clfTime(time: number): string {
  return clfSeconds.of(time);
}
