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
 * content type with `JSON.stringify`. Parsers have already decoded any `Content-Encoding`.
 *
 * @throws RelayError `ERR_BODY_CONSUMED` when the body was read and cannot be rebuilt
 *   faithfully (multipart, a nested key it cannot encode, a charset Node cannot write …).
 * @example
 * const body = consumedBody(req); // after express.json(): Buffer.from('{"user":"ada"}')
 */
export function consumedBody(req: ParsedRequest): Buffer | undefined {
  // The common case: nobody touched the stream; the relay streams it.
  if (req._body !== true && !req.readableDidRead && !req.readableEnded) return undefined;
  const headers = req.headers;
  const length = headers['content-length'];
  if (headers['transfer-encoding'] === undefined && (length === undefined || Number(length) === 0)) return undefined;
  const body = req.body;
  if (Buffer.isBuffer(body)) return body;
  const contentType = (headers['content-type'] ?? '').toLowerCase();
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim();
  const charset = charsetOf(contentType);
  const json = mediaType === 'application/json' || mediaType.endsWith('+json');
  if (typeof body === 'string' && !(json && !isJsonText(body))) {
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
  if (json) {
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw refuse(`a JSON body in charset "${charset}": only UTF-8 JSON is rebuilt`, mediaType);
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(body);
    } catch (error) {
      throw refuse(`JSON.stringify failed: ${(error as Error).message}`, mediaType);
    }
    if (text === undefined) throw refuse('the parsed JSON value cannot be serialised', mediaType);
    return Buffer.from(text, 'utf8');
  }
  throw refuse(`req.body is ${Array.isArray(body) ? 'an array' : typeof body} and the content type says nothing about how to write it back`, mediaType);
}

function charsetOf(contentType: string): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)/.exec(contentType);
  return match === null ? undefined : match[1];
}

/** A string that is already JSON text (express.text under a JSON type) rather than a decoded JSON string value. */
function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function refuse(reason: string, mediaType: string): RelayError {
  return new RelayError(
    'ERR_BODY_CONSUMED',
    `the request body (${mediaType || 'no content type'}) was read by a middleware before the relay and cannot be rebuilt: ${reason}; mount the relay before the body parser`,
  );
}
