import zlib from 'node:zlib';
import type { HeaderRecord, HeaderValue, Handler, ProxyRequest, ProxyResponse, Stage } from '@relay/core';
import { bodyCoding, createEncoder, defaultLevels, type CodingLevels } from './codings.js';
import { mediaType, typeMatcher } from './media-type.js';
import { cachedNegotiator, checkEncodings, type ContentCoding, type Negotiated } from './negotiate.js';
import { assertKnownKeys, checkBytes, checkInteger, optionsObject } from './options.js';
import { addVaryAcceptEncoding, markEncoded, markEncodedNotModified, strongIfNoneMatch, withoutStaleDigests } from './representation.js';
import { ignoreError, linkFlushing, linkUpstreamBody } from './stream-link.js';

/** Options of `compress()` and `compressionPlanner()`. */
export interface CompressOptions {
  /** Codings offered, in order of preference when the client's q-values tie. Default `['br', 'gzip']`. */
  encodings?: readonly ContentCoding[];
  /** Responses with a `Content-Length` below this many bytes are sent as they are. Default 1024. */
  threshold?: number;
  /** Media types compressed (`text/*`, `type/*+suffix` patterns allowed). Default: text, JSON, JavaScript, XML, SVG, WebAssembly, NDJSON. */
  types?: readonly string[];
  /** Media types flushed after every chunk even with a `Content-Length` (a body of unknown length always is). Default `['text/event-stream']`. */
  flushTypes?: readonly string[];
  /** gzip level, 1 to 9. Default 6 (as the `compression` middleware). */
  gzipLevel?: number;
  /** Brotli quality, 0 to 11. Default 4 (as the `compression` middleware; 11 is far too slow per request). */
  brotliQuality?: number;
}

const optionNames = ['encodings', 'threshold', 'types', 'flushTypes', 'gzipLevel', 'brotliQuality'] as const;

/**
 * The media types `compress()` compresses by default.
 *
 * @example
 * compress({ types: [...compressibleTypes, 'application/vnd.api+json'] });
 */
export const compressibleTypes: readonly string[] = Object.freeze([
  'text/*',
  'application/json',
  'application/*+json',
  'application/x-ndjson',
  'application/javascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'image/svg+xml',
]);

/** What `compress()` does with one response. */
export interface CompressionPlan {
  /** The coding to apply, or `null` to send the body as it is. */
  coding: ContentCoding | null;
  /** Whether the response varies with `Accept-Encoding` (add it to `Vary`). */
  vary: boolean;
  /** Whether to flush the encoder after every chunk (a body of unknown length, or a type in `flushTypes`). */
  flush: boolean;
}

/** Decides the `CompressionPlan` of one response: the plain function behind `compress()`. */
export type CompressionPlanner = (
  method: string,
  acceptEncoding: HeaderValue | undefined,
  status: number,
  headers: HeaderRecord,
) => CompressionPlan;

const untouched: CompressionPlan = Object.freeze({ coding: null, vary: false, flush: false });
const varyOnly: CompressionPlan = Object.freeze({ coding: null, vary: true, flush: false });

/**
 * Compiles `compress()` options into the function that decides, per response, whether and how to
 * compress. Never for 1xx, 204, 205 or 206, a `Content-Range`, a body already encoded, a
 * `Cache-Control: no-transform`, a type not in `types` or a `Content-Length` under `threshold`;
 * then `Vary: Accept-Encoding` and the coding `negotiateEncoding` picks. A HEAD is planned as the
 * GET it stands for, and so is a 304 to a GET or HEAD (its `coding` is the one its 200 would carry);
 * a 304 without `Content-Type` (the usual case) counts as compressible when the request accepts a
 * coding on offer, and is left alone otherwise. A body without `Content-Length` is flushed after
 * every chunk, as one in `flushTypes` is.
 *
 * @example
 * const plan = compressionPlanner({ threshold: 0 });
 * plan('GET', 'gzip, br', 200, { 'content-type': 'application/json', 'content-length': '5000' });
 * // { coding: 'br', vary: true, flush: false }
 */
export function compressionPlanner(options: CompressOptions = {}): CompressionPlanner {
  return plannerFor(resolveCompressOptions(options));
}

const noTransform = /(?:^|,)\s*no-transform\s*(?:,|$)/i;

function plannerFor(settings: CompressSettings): CompressionPlanner {
  const { negotiate, threshold, isCompressible, isFlushed } = settings;
  // Every possible plan, made once: nothing is allocated per response.
  const streaming = new Map<ContentCoding, CompressionPlan>();
  const flushing = new Map<ContentCoding, CompressionPlan>();
  for (const coding of settings.encodings) {
    streaming.set(coding, Object.freeze({ coding, vary: true, flush: false }));
    flushing.set(coding, Object.freeze({ coding, vary: true, flush: true }));
  }
  // HEAD is not excluded: it gets the header fields of the GET (RFC 9110 §9.3.2), and a 304 those of
  // the 200 it stands for (§15.4.5); the stage decides which of them a bodiless answer carries.
  return function planCompression(method, acceptEncoding, status, headers) {
    // 205 as 204: "a server MUST NOT generate content in a 205 response" (RFC 9110 §15.3.6), and an empty gzip is content.
    if (status < 200 || status === 204 || status === 205 || status === 206) return untouched;
    if (status === 304 && method !== 'GET' && method !== 'HEAD') return untouched;
    if (headers['content-range'] !== undefined || bodyCoding(headers['content-encoding']) !== 'identity') return untouched;
    const cacheControl = headers['cache-control'];
    if (cacheControl !== undefined && noTransform.test(String(cacheControl))) return untouched;
    const type = mediaType(headers['content-type']);
    // A 304 seldom names its type: unknown, it is judged by the request alone (below).
    const typeUnknown = type === '' && status === 304;
    if (!typeUnknown && !isCompressible(type)) return untouched;
    const length = headers['content-length'];
    if (length !== undefined && Number(length) < threshold) return untouched;
    const coding = negotiate(acceptEncoding);
    if (coding === 'identity' || coding === null) return typeUnknown ? untouched : varyOnly;
    // A body of unknown length may be a stream (NDJSON, a log tail, tokens): each chunk is flushed as it comes, as
    // Go's ReverseProxy (Caddy) flushes such responses and Envoy's compressor flushes every data frame. A body of
    // known length is a document: no flush, so zlib keeps its full window and ratio. HEAD and 304 have no body to flush.
    const unknownLength = length === undefined && status !== 304 && method !== 'HEAD';
    return (unknownLength || isFlushed(type) ? flushing : streaming).get(coding)!;
  };
}

interface CompressSettings {
  encodings: readonly ContentCoding[];
  negotiate: (acceptEncoding: HeaderValue | undefined) => Negotiated;
  threshold: number;
  isCompressible: (type: string) => boolean;
  isFlushed: (type: string) => boolean;
  levels: CodingLevels;
}

function resolveCompressOptions(options: CompressOptions): CompressSettings {
  const checked = optionsObject(options, 'compress');
  assertKnownKeys(checked, optionNames, 'compress');
  const encodings = checkEncodings(checked.encodings ?? ['br', 'gzip'], 'compress');
  return {
    encodings,
    negotiate: cachedNegotiator({ encodings }),
    threshold: checkBytes(checked.threshold ?? 1024, 'compress: threshold'),
    isCompressible: typeMatcher(checked.types ?? compressibleTypes, 'compress: types'),
    isFlushed: typeMatcher(checked.flushTypes ?? ['text/event-stream'], 'compress: flushTypes'),
    levels: {
      gzipLevel: checkInteger(checked.gzipLevel ?? defaultLevels.gzipLevel, 'compress: gzipLevel', 1, 9),
      brotliQuality: checkInteger(checked.brotliQuality ?? defaultLevels.brotliQuality, 'compress: brotliQuality', 0, 11),
    },
  };
}

/**
 * Compresses responses toward the client with `br` or `gzip`, negotiated from `Accept-Encoding`
 * (q-values, `*`, `identity;q=0`; `br` wins ties). Streams: nothing is buffered, and a body of
 * unknown length or an event stream (`text/event-stream`) is flushed after every chunk, so what
 * the upstream sends arrives when it is sent. Trailer fields go on (digests of the bytes dropped).
 * Adds `Vary: Accept-Encoding` to every response whose encoding depends on it, never encodes a
 * body twice, honours `Cache-Control: no-transform`, and leaves 204, 205 and 206 alone. A HEAD gets the
 * header fields of the compressed GET (`Content-Encoding`, weak `ETag`, `Vary`, no `Content-Length`).
 * A 304 to a request that accepts a coding on offer gets the `Vary` and weak `ETag` its 200 carried,
 * unless what it does carry (a `Content-Type` not in `types`, `no-transform`, a `Content-Encoding`, a
 * `Content-Length` under `threshold`) says that 200 was not compressed; an `If-None-Match` of such a
 * client goes upstream with its tags strong. Put it first (outermost): it sees the final response,
 * after retries and rewrites.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://api:8000',
 *   stages: [compress({ threshold: 1024 }), retry({ maxRetries: 2 })],
 * });
 */
export function compress(options: CompressOptions = {}): Stage {
  const settings = resolveCompressOptions(options);
  const levels = settings.levels;
  const plan = plannerFor(settings);
  return {
    name: 'compress',
    wrap(next: Handler): Handler {
      return async function compressStage(request: ProxyRequest): Promise<ProxyResponse> {
        // Read before `next`: a stage inside may drop Accept-Encoding on its way to the upstream.
        const { method } = request;
        const acceptEncoding = request.headers['accept-encoding'];
        if ((method === 'GET' || method === 'HEAD') && request.headers['if-none-match'] !== undefined) {
          revalidateAsIssued(request.headers, settings.negotiate(acceptEncoding));
        }
        const response = await next(request);
        // HEAD and 304 have no body, yet describe the 200 a GET gets; other bodiless answers have nothing to describe.
        if (response.body === null && method !== 'HEAD' && response.status !== 304) return response;
        const decided = plan(method, acceptEncoding, response.status, response.headers);
        if (decided.vary) addVaryAcceptEncoding(response.headers);
        if (decided.coding === null) return response;
        if (response.body === null) return describeEncoded(response, decided.coding);
        return encodeResponse(response, decided, levels);
      };
    },
  };
}

/**
 * A client revalidating a compressed answer sends the weak tag it got (`W/"abc"`); an upstream that
 * compares tags as strings only knows `"abc"`. If-None-Match compares weakly (RFC 9110 §13.1.2), so
 * sending the strong form changes nothing for an upstream that follows the RFC and restores the 304
 * for one that does not. Only for a client that accepts a coding on offer: no other can hold a tag
 * compress() weakened. If-Match (strong comparison, lost-update checks) is left as the client sent it.
 */
function revalidateAsIssued(headers: HeaderRecord, negotiated: Negotiated): void {
  if (negotiated === 'identity' || negotiated === null) return;
  const strong = strongIfNoneMatch(headers['if-none-match']!);
  if (strong !== null) headers['if-none-match'] = strong;
}

/** The header fields of a compressed 200 on the answer to HEAD (all of them) or on a 304 (validators and Vary). */
function describeEncoded(response: ProxyResponse, coding: ContentCoding): ProxyResponse {
  if (response.status === 304) markEncodedNotModified(response.headers);
  else markEncoded(response.headers, coding);
  return response;
}

const syncFlush = { gzip: zlib.constants.Z_SYNC_FLUSH, br: zlib.constants.BROTLI_OPERATION_FLUSH } as const;

function encodeResponse(response: ProxyResponse, plan: CompressionPlan, levels: CodingLevels): ProxyResponse {
  const coding = plan.coding!;
  const headers = response.headers;
  const length = Number(headers['content-length'] ?? 0);
  const encoder = createEncoder(coding, levels, length);
  markEncoded(headers, coding);
  const body = plan.flush ? linkFlushing(response.body!, encoder, syncFlush[coding]) : linkUpstreamBody(response.body!, encoder);
  body.on('error', ignoreError);
  // The same response with its body encoded: the chosen target, an errorCode and the trailers go on. The
  // encoder ends after the upstream body, so the trailers are there when the relay asks for them.
  return { ...response, headers, body, trailers: withoutStaleDigests(response.trailers) };
}
