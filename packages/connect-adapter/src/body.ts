import type { IncomingMessage } from 'node:http';
import { RelayError } from '@relay/core';
import { encodeForm } from './form.js';

/** A request as body parsers leave it: `body` is the parsed value, `_body` body-parser 1's mark. */
export interface ParsedRequest extends IncomingMessage {
  body?: unknown;
  _body?: unknown;
}

/** Charsets Node can encode a string back into byte for byte. */
const encodings: Record<string, BufferEncoding> = {
  'utf-8': 'utf8',
  utf8: 'utf8',
  'iso-8859-1': 'latin1',
  latin1: 'latin1',
  'us-ascii': 'latin1',
  ascii: 'latin1',
  'utf-16le': 'utf16le',
};

/**
 * The body to send instead of `req` when an earlier middleware has read it, or `undefined`
 * when `req` can be streamed as it is (nobody read it, or it declares no body).
 *
 * A body parser's result is serialised again by what it is and the request's content type:
 * a `Buffer` (`express.raw`) as is; a string (`express.text`) in the request's charset; an
 * object under a form content type as form fields (`encodeForm`); any value under a JSON
 * content type with `JSON.stringify` (a string too, unless its length shows it is the raw
 * text). Parsers have already decoded any `Content-Encoding`. A body that ended empty stays
 * empty, whatever the parser left.
 *
 * @throws RelayError `ERR_BODY_CONSUMED` when the body was read and cannot be rebuilt
 *   faithfully (multipart, a nested key it cannot encode, a charset Node cannot write, a
 *   number that overflowed to `Infinity` …).
 * @example
 * const body = consumedBody(req); // after express.json(): Buffer.from('{"user":"ada"}')
 */
export function consumedBody(req: ParsedRequest): Buffer | undefined {
  // The common case: nobody touched the stream; the relay streams it.
  if (req._body !== true && !req.readableDidRead && !req.readableEnded) return undefined;
  const body = req.body;
  // The bytes as received, whatever framed them (HTTP/2 needs no Content-Length).
  if (Buffer.isBuffer(body)) return body;
  const headers = req.headers;
  if (declaresNoBody(req)) return undefined;
  // The stream ended without a byte (an empty chunked body): whatever the parser made of
  // nothing (express.json: `{}`) was not sent.
  if (req.readableEnded && !req.readableDidRead) return EMPTY;
  const contentType = (headers['content-type'] ?? '').toLowerCase();
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim();
  const charset = charsetOf(contentType);
  const json = mediaType === 'application/json' || mediaType.endsWith('+json');
  // A string under a JSON type: raw text (express.text) or a JSON string value (strict: false)?
  const rawText = typeof body === 'string' && (!json || rawTextProof(req, body, charset));
  if (rawText === null) {
    throw refuse('a string body under a JSON type, without a Content-Length to tell raw text (express.text) from a JSON string value (express.json({ strict: false }))', mediaType);
  }
  if (rawText) {
    // express.text (whatever the content type it was given): the text in its charset.
    const encoding = encodings[charset ?? 'utf-8'];
    if (encoding === undefined) throw refuse(`a text body in charset "${charset}", which Node cannot encode back`, mediaType);
    return Buffer.from(body, encoding);
  }
  if (body === undefined) throw refuse('req.body is undefined: the stream was read by something other than a body parser', mediaType);
  if (mediaType === 'application/x-www-form-urlencoded') {
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw refuse(`a form body in charset "${charset}": only UTF-8 forms are rebuilt`, mediaType);
    }
    const form = encodeForm(body);
    if (form === null) throw refuse('the parsed form has a value or key that form encoding cannot express', mediaType);
    return Buffer.from(form, 'utf8');
  }
  if (json) return jsonBody(body, charset, mediaType);
  throw refuse(`req.body is ${Array.isArray(body) ? 'an array' : typeof body} and the content type says nothing about how to write it back`, mediaType);
}

const EMPTY = Buffer.alloc(0);

/**
 * Whether the request's framing says it has no body: `Content-Length: 0`, or over HTTP/1
 * neither `Content-Length` nor `Transfer-Encoding`. HTTP/2 frames bodies without either.
 */
function declaresNoBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) === 0;
  return req.httpVersionMajor < 2 && req.headers['transfer-encoding'] === undefined;
}

/**
 * Whether a string `req.body` under a JSON type is the raw body text (express.text) rather than
 * a JSON string value (express.json({ strict: false })). Only the length tells them apart: a
 * decoded JSON string is always shorter than its source (the quotes at least), raw text exactly
 * as long. `null` without a length to compare (chunked, or a parser-decoded Content-Encoding):
 * the body is refused then rather than guessed.
 */
function rawTextProof(req: IncomingMessage, body: string, charset: string | undefined): boolean | null {
  const length = req.headers['content-length'];
  const encoding = encodings[charset ?? 'utf-8'];
  if (length === undefined || encoding === undefined || req.headers['content-encoding'] !== undefined) return null;
  return Buffer.byteLength(body, encoding) === Number(length);
}

/** `JSON.stringify(body)` in UTF-8; refused when that would not write what was parsed. */
function jsonBody(body: unknown, charset: string | undefined, mediaType: string): Buffer {
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw refuse(`a JSON body in charset "${charset}": only UTF-8 JSON is rebuilt`, mediaType);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(body, refuseNonFinite);
  } catch (error) {
    throw refuse(`JSON.stringify failed: ${(error as Error).message}`, mediaType);
  }
  if (text === undefined) throw refuse('the parsed JSON value cannot be serialised', mediaType);
  return Buffer.from(text, 'utf8');
}

/**
 * A replacer that throws on `Infinity` and `NaN`, which JSON.stringify would write as `null`:
 * JSON.parse turns a number too large for a double (`1e400`) into `Infinity`, so the client
 * sent a number and the upstream would get `null`. (Integers beyond 2^53 parse to a nearby
 * double, which cannot be told from a value sent as such: see the README.)
 */
function refuseNonFinite(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError(`the number ${value} has no JSON form (the client's number overflowed a double)`);
  return value;
}

function charsetOf(contentType: string): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)/.exec(contentType);
  return match === null ? undefined : match[1];
}

function refuse(reason: string, mediaType: string): RelayError {
  return new RelayError(
    'ERR_BODY_CONSUMED',
    `the request body (${mediaType || 'no content type'}) was read by a middleware before the relay and cannot be rebuilt: ${reason}; mount the relay before the body parser`,
  );
}
