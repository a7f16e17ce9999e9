import { RelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext } from '@relay/core';
import { loggedPath } from '@relay/core/transport';
import { BufferStream } from './buffer-stream.js';
import { collectBody } from './collect.js';
import { bodyCoding } from './codings.js';
import { decodableAcceptEncoding } from './negotiate.js';
import { wholeOnly } from './ranges.js';
import { forgetBytes, withoutStaleDigests } from './representation.js';
import { rewriteBody, RewriteError, textEncoding, type BodyAs, type BodyResult, type BodyValue } from './rewrite.js';
import { resolveBufferedOptions, responseTransformable, type BufferedSettings, type TransformOptions } from './transform-options.js';

/** What a response transform is told besides the body. `response.headers` may be changed in place. */
export interface ResponseTransformContext {
  readonly request: ProxyRequest;
  readonly response: ProxyResponse;
}

/** A response transform: the body in, the new body out (`undefined`: unchanged); may be async. */
export type ResponseTransformer<A extends BodyAs = 'text'> = (
  body: BodyValue<A>,
  context: ResponseTransformContext,
) => BodyResult<A> | Promise<BodyResult<A>>;

/**
 * Rewrites whole response bodies: a body of a matching type, up to `maxBytes`, is read, decoded
 * (gzip, br, deflate), handed to `fn` as text, parsed JSON or bytes, encoded again with the same
 * coding and sent with a fresh `Content-Length` and without its stale `ETag`/`Content-MD5`. Other
 * types, event streams, larger bodies, HEAD, 204, 205, 206 and 304 pass untouched and streaming.
 * A `Range` request header is dropped so matching bodies come whole, and no response of the route
 * says `Accept-Ranges` (a 206 to a dropped `Range` gives 502). A body that cannot be decoded
 * (or parsed as JSON), or an `fn` that throws, gives 502 (`ERR_UPSTREAM_PROTOCOL`) with a log line.
 *
 * @example
 * transformResponse((data: any) => ({ ...data, internalId: undefined }), { as: 'json' });
 * transformResponse((html) => html.replaceAll('http://api.internal', 'https://api.example.com'));
 */
export function transformResponse<A extends BodyAs = 'text'>(fn: ResponseTransformer<A>, options?: TransformOptions<A>): Stage {
  const settings = resolveBufferedOptions(fn, options, 'transformResponse');
  return {
    name: 'transform-response',
    wrap(next: Handler, context): Handler {
      return async function transformResponseStage(request: ProxyRequest): Promise<ProxyResponse> {
        const rangeDropped = prepareForTransform(request);
        const response = wholeOnly(await next(request), rangeDropped, context, request);
        if (request.method === 'HEAD') return describedHead(response, settings);
        if (response.body === null || !responseTransformable(request.method, response.status, response.headers, settings.isTransformed, true)) {
          return response;
        }
        return rewriteResponse(settings, fn as ResponseTransformer<BodyAs>, context, request, response);
      };
    },
  };
}

/**
 * Prepares a request whose response may be transformed: no `Range` (ranges would be ranges of the
 * bytes before the rewrite, so a transformed route serves whole bodies) and an `Accept-Encoding`
 * limited to codings the transform can decode (an upstream answering zstd would slip past it).
 * Returns whether a `Range` was dropped, so a 206 answering it anyway is not passed on as its answer.
 *
 * @example
 * prepareForTransform(request); // Range: bytes=0-99, Accept-Encoding: zstd, gzip → Accept-Encoding: gzip; true
 */
export function prepareForTransform(request: ProxyRequest): boolean {
  const headers = request.headers;
  const rangeDropped = headers.range !== undefined;
  if (rangeDropped) {
    delete headers.range;
    delete headers['if-range'];
  }
  const acceptEncoding = headers['accept-encoding'];
  if (acceptEncoding !== undefined) {
    const decodable = decodableAcceptEncoding(acceptEncoding);
    if (decodable === undefined) delete headers['accept-encoding'];
    else headers['accept-encoding'] = decodable;
  }
  return rangeDropped;
}

/**
 * A HEAD stands for the GET (RFC 9110 §9.3.2): when that GET's body would be rewritten, the length
 * and validators of the upstream's bytes are not the GET's, so they go, as nginx's sub_filter
 * clears them. What the transform would make of the body is unknown without it: no length is stated.
 */
function describedHead(response: ProxyResponse, settings: BufferedSettings): ProxyResponse {
  if (responseTransformable('GET', response.status, response.headers, settings.isTransformed, true) && worthReading(response.headers, settings)) {
    forgetBytes(response.headers);
  }
  return response;
}

/** Whether a transformable body is read at all: a declared length within `maxBytes`, a coding and charset the rewrite handles. */
function worthReading(headers: ProxyResponse['headers'], settings: BufferedSettings): boolean {
  const declared = headers['content-length'];
  if (declared !== undefined && Number(declared) > settings.maxBytes) return false;
  return bodyCoding(headers['content-encoding']) !== null && textEncoding(headers['content-type'], settings.as) !== null;
}

async function rewriteResponse(
  settings: BufferedSettings,
  fn: ResponseTransformer<BodyAs>,
  stage: StageContext,
  request: ProxyRequest,
  response: ProxyResponse,
): Promise<ProxyResponse> {
  const { maxBytes, as } = settings;
  const headers = response.headers;
  // Too large, or a coding or charset the rewrite would leave alone: not worth reading into memory.
  if (!worthReading(headers, settings)) return response;
  const bytes = await collectBody(response.body!, maxBytes, { side: 'response' });
  // Larger than the limit: what was read is back in the stream, which goes on untouched.
  if (bytes === null) return response;
  const context: ResponseTransformContext = { request, response };
  let rewritten: Buffer | null;
  try {
    rewritten = await rewriteBody(bytes, headers, (value) => fn(value, context), { as, maxBytes });
  } catch (error) {
    throw transformFailure(stage, request, response, error);
  }
  // The same response with its body read: the chosen target, an errorCode and the trailers go on (the upstream
  // body has ended, so they are there). A rewritten body keeps them, but not a digest of the old bytes.
  if (rewritten === null) {
    headers['content-length'] = String(bytes.length);
    return { ...response, headers, body: new BufferStream(bytes) };
  }
  return { ...response, headers, body: new BufferStream(rewritten), trailers: withoutStaleDigests(response.trailers) };
}

function transformFailure(context: StageContext, request: ProxyRequest, response: ProxyResponse, error: unknown): RelayError {
  const message = error instanceof Error ? error.message : String(error);
  const relayError = new RelayError('ERR_UPSTREAM_PROTOCOL', `response transform: ${message}`, { cause: error });
  const level = error instanceof RewriteError && error.stage === 'decode' ? 'warn' : 'error';
  context.logger[level]({ method: request.method, path: loggedPath(request.path, context), status: response.status, code: relayError.code, error: message }, 'response transform failed: 502 sent');
  return relayError;
}
