import zlib from 'node:zlib';
import type { HeaderRecord, HeaderValue, Handler, ProxyRequest, ProxyResponse, Stage } from '@relay/core';
import { bodyCoding, createEncoder, defaultLevels, type CodingLevels } from './codings.js';
import { mediaType, typeMatcher } from './media-type.js';
import { cachedNegotiator, type ContentCoding } from './negotiate.js';
import { assertKnownKeys, checkBytes, checkChoice, checkInteger, optionsObject } from './options.js';
import { addVaryAcceptEncoding, markEncoded } from './representation.js';
import { ignoreError, linkFlushing, linkUpstreamBody } from './stream-link.js';

/** Options of `compress()` and `compressionPlanner()`. */
export interface CompressOptions {
  /** Codings offered, in order of preference when the client's q-values tie. Default `['br', 'gzip']`. */
  encodings?: readonly ContentCoding[];
  /** Responses with a `Content-Length` below this many bytes are sent as they are. Default 1024. */
  threshold?: number;
  /** Media types compressed (`text/*`, `type/*+suffix` patterns allowed). Default: text, JSON, JavaScript, XML, SVG, WebAssembly, NDJSON. */
  types?: readonly string[];
  /** Media types flushed after every chunk so each event reaches the client at once. Default `['text/event-stream']`. */
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
  /** Whether to flush the encoder after every chunk (event streams). */
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
 * compress. Never for HEAD, 1xx, 204, 206 or 304, a `Content-Range`, a body already encoded, a
 * `Cache-Control: no-transform`, a type not in `types` or a `Content-Length` under `threshold`;
 * then `Vary: Accept-Encoding` and the coding `negotiateEncoding` picks.
 *
 * @example
 * const plan = compressionPlanner({ threshold: 0 });
 * plan('GET', 'gzip, br', 200, { 'content-type': 'application/json' });
 * // { coding: 'br', vary: true, flush: false }
 */
export function compressionPlanner(options: CompressOptions = {}): CompressionPlanner {
  return plannerFor(resolveCompressOptions(options));
}

function plannerFor(settings: CompressSettings): CompressionPlanner {
  const negotiate = cachedNegotiator({ encodings: settings.encodings });
  const { threshold, isCompressible, isEventStream } = settings;
  // Every possible plan, made once: nothing is allocated per response.
  const streaming = new Map<ContentCoding, CompressionPlan>();
  const flushing = new Map<ContentCoding, CompressionPlan>();
  for (const coding of settings.encodings) {
    streaming.set(coding, Object.freeze({ coding, vary: true, flush: false }));
    flushing.set(coding, Object.freeze({ coding, vary: true, flush: true }));
  }
  return function planCompression(method, acceptEncoding, status, headers) {
    if (method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return untouched;
    if (headers['content-range'] !== undefined || bodyCoding(headers['content-encoding']) !== 'identity') return untouched;
    const cacheControl = headers['cache-control'];
    if (cacheControl !== undefined && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(String(cacheControl))) return untouched;
    const type = mediaType(headers['content-type']);
    if (!isCompressible(type)) return untouched;
    const length = headers['content-length'];
    if (length !== undefined && Number(length) < threshold) return untouched;
    const coding = negotiate(acceptEncoding);
    if (coding === 'identity' || coding === null) return varyOnly;
    return (isEventStream(type) ? flushing : streaming).get(coding)!;
  };
}

interface CompressSettings {
  encodings: readonly ContentCoding[];
  threshold: number;
  isCompressible: (type: string) => boolean;
  isEventStream: (type: string) => boolean;
  levels: CodingLevels;
}

function resolveCompressOptions(options: CompressOptions): CompressSettings {
  const checked = optionsObject(options, 'compress');
  assertKnownKeys(checked, optionNames, 'compress');
  const encodings = checked.encodings ?? ['br', 'gzip'];
  if (!Array.isArray(encodings) || encodings.length === 0) throw new TypeError('compress: encodings must be a non-empty array of "br" and "gzip"');
  encodings.forEach((coding, index) => checkChoice(coding, ['br', 'gzip'], `compress: encodings[${index}]`));
  return {
    encodings,
    threshold: checkBytes(checked.threshold ?? 1024, 'compress: threshold'),
    isCompressible: typeMatcher(checked.types ?? compressibleTypes, 'compress: types'),
    isEventStream: typeMatcher(checked.flushTypes ?? ['text/event-stream'], 'compress: flushTypes'),
    levels: {
      gzipLevel: checkInteger(checked.gzipLevel ?? defaultLevels.gzipLevel, 'compress: gzipLevel', 1, 9),
      brotliQuality: checkInteger(checked.brotliQuality ?? defaultLevels.brotliQuality, 'compress: brotliQuality', 0, 11),
    },
  };
}

/**
 * Compresses responses toward the client with `br` or `gzip`, negotiated from `Accept-Encoding`
 * (q-values, `*`, `identity;q=0`; `br` wins ties). Streams: nothing is buffered, and an event
 * stream (`text/event-stream`) is flushed after every chunk so each event arrives when it is sent.
 * Adds `Vary: Accept-Encoding` to every response whose encoding depends on it, never encodes a
 * body twice, honours `Cache-Control: no-transform`, and leaves HEAD, 204, 206 and 304 alone. Put it
 * first (outermost): it sees the final response, after retries and rewrites.
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
        const response = await next(request);
        if (response.body === null) return response;
        const decided = plan(method, acceptEncoding, response.status, response.headers);
        if (decided.vary) addVaryAcceptEncoding(response.headers);
        if (decided.coding === null) return response;
        return encodeResponse(response, decided, levels);
      };
    },
  };
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
  return { status: response.status, statusMessage: response.statusMessage, headers, body };
}
