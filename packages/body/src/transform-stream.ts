import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { RelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext } from '@relay/core';
import { loggedPath } from '@relay/core/transport';
import { bodyCoding, createDecoder, createEncoder, defaultLevels, type BodyCoding } from './codings.js';
import { DecodedBound } from './decoded-bound.js';
import { badRequestBodyResponse } from './error-response.js';
import { refuseTooLarge } from './limit.js';
import { mediaType } from './media-type.js';
import { wholeOnly } from './ranges.js';
import { dropStaleValidators, forgetBytes, withoutStaleDigests } from './representation.js';
import { RequestDecoding } from './request-decoding.js';
import { ignoreError, link, linkClientBody, linkClientDecoder, linkUpstreamBody } from './stream-link.js';
import {
  resolveRequestStreamOptions,
  resolveStreamOptions,
  responseTransformable,
  type RequestStreamTransformOptions,
  type StreamTransformOptions,
} from './transform-options.js';
import type { RequestTransformContext } from './transform-request.js';
import { prepareForTransform, type ResponseTransformContext } from './transform-response.js';

/** Makes the `Transform` for one body (decoded bytes in, new bytes out), or `null` to leave this body alone. */
export type TransformFactory<C> = (context: C) => Transform | null;

/**
 * Rewrites response bodies as they stream, for bodies too large to hold (HTML rewriting, a
 * find-and-replace over a download): the body is decoded (gzip, br, deflate), piped through the
 * `Transform` that `factory` makes for it, and encoded again with the same coding; memory stays
 * flat. `Content-Length`, `ETag` and `Content-MD5` go; `Range` is dropped as by `transformResponse`,
 * and no response of the route says `Accept-Ranges`. The response head waits
 * for the Transform's first output: a Transform that fails before it gives 502
 * (`ERR_UPSTREAM_PROTOCOL`), one that fails later cuts the client connection (never a body that
 * looks complete). HEAD, 204, 205, 206 and 304 and other types pass untouched.
 *
 * @example
 * transformResponseStream(() => new ReplaceStream('http://api.internal', 'https://api.example.com'), { types: ['text/html'] });
 */
export function transformResponseStream(factory: TransformFactory<ResponseTransformContext>, options?: StreamTransformOptions): Stage {
  const types = resolveStreamOptions(factory, options, 'transformResponseStream');
  return {
    name: 'transform-response-stream',
    wrap(next: Handler, context): Handler {
      return async function transformResponseStreamStage(request: ProxyRequest): Promise<ProxyResponse> {
        const rangeDropped = prepareForTransform(request);
        const response = wholeOnly(await next(request), rangeDropped, context, request);
        // A HEAD stands for the GET, whose body would be transformed: its length and validators are not the upstream's.
        if (request.method === 'HEAD') {
          if (responseTransformable('GET', response.status, response.headers, types, false) && bodyCoding(response.headers['content-encoding']) !== null) {
            forgetBytes(response.headers);
          }
          return response;
        }
        if (response.body === null || !responseTransformable(request.method, response.status, response.headers, types, false)) return response;
        const coding = bodyCoding(response.headers['content-encoding']);
        if (coding === null) return response;
        return streamResponse(factory, context, coding, request, response);
      };
    },
  };
}

async function streamResponse(
  factory: TransformFactory<ResponseTransformContext>,
  context: StageContext,
  coding: BodyCoding | 'identity',
  request: ProxyRequest,
  response: ProxyResponse,
): Promise<ProxyResponse> {
  const source = response.body!;
  let transform: Transform | null;
  try {
    transform = factory({ request, response });
  } catch (error) {
    source.destroy();
    throw streamFailure(context, request, response, error);
  }
  if (transform === null) return response;
  const headers = response.headers;
  forgetBytes(headers);
  const gate = new HeadGate();
  const body = responseChain(source, coding, guard(transform), gate);
  body.on('error', ignoreError);
  try {
    await gate.opened;
  } catch (error) {
    body.destroy();
    throw streamFailure(context, request, response, error);
  }
  // The same response with its body transformed: the chosen target, an errorCode and the trailers (less digests
  // of the old bytes) go on; the transformed body ends after the upstream's, so the trailers are there by then.
  return { ...response, headers, body, trailers: withoutStaleDigests(response.trailers) };
}

function streamFailure(context: StageContext, request: ProxyRequest, response: ProxyResponse, error: unknown): RelayError {
  // The upstream failing or the client leaving is not the transform's failure: it keeps its own code (and log line).
  if (error instanceof RelayError) return error;
  const message = error instanceof Error ? error.message : String(error);
  context.logger.error({ method: request.method, path: loggedPath(request.path, context), status: response.status, error: message }, 'response stream transform failed before the head: 502 sent');
  return new RelayError('ERR_UPSTREAM_PROTOCOL', `response stream transform: ${message}`, { cause: error });
}

/**
 * Rewrites request bodies as they stream up, through the `Transform` `factory` makes for each
 * (decoded and encoded again like `transformResponseStream`). The body is sent chunked, without
 * `Content-Length`. When the body can be replayed (`replayBody`, e.g. buffered by an earlier stage),
 * each replay runs through a fresh Transform, so a retry sends the transformed bytes again. A
 * Transform that fails aborts the attempt (500 `ERR_INTERNAL` before a response). A compressed body
 * that decodes to more than `maxDecodedBytes` (default 1 MiB) gets 413 (`ERR_BODY_TOO_LARGE`); one
 * that does not decode as its `Content-Encoding` says (not gzip, cut short) gets 400, as from
 * `transformRequest`. Both abort the attempt and answer with `Connection: close`.
 *
 * @example
 * transformRequestStream(() => new RedactStream(/"password":"[^"]*"/g), { types: ['application/json'] });
 */
export function transformRequestStream(factory: TransformFactory<RequestTransformContext>, options?: RequestStreamTransformOptions): Stage {
  const settings = resolveRequestStreamOptions(factory, options);
  return {
    name: 'transform-request-stream',
    wrap(next: Handler, context): Handler {
      return function transformRequestStreamStage(request: ProxyRequest): Promise<ProxyResponse> {
        const headers = request.headers;
        if (request.body === null || !settings.isTransformed(mediaType(headers['content-type']))) return next(request);
        const coding = bodyCoding(headers['content-encoding']);
        if (coding === null) return next(request);
        const decoding = coding === 'identity' ? null : new RequestDecoding(coding, decodedBound(settings.maxDecodedBytes, coding));
        const transformed = streamRequest(factory, decoding, request);
        if (transformed === null) return next(request);
        return decoding === null ? next(transformed) : sendDecoded(next, context, decoding, transformed);
      };
    },
  };
}

function decodedBound(maxDecodedBytes: number, coding: BodyCoding): DecodedBound | null {
  return maxDecodedBytes === Infinity ? null : new DecodedBound(maxDecodedBytes, coding);
}

function streamRequest(factory: TransformFactory<RequestTransformContext>, decoding: RequestDecoding | null, request: ProxyRequest): ProxyRequest | null {
  const context: RequestTransformContext = { request };
  const transform = factory(context);
  if (transform === null) return null;
  const headers = request.headers;
  delete headers['content-length'];
  dropStaleValidators(headers);
  const replay = request.replayBody;
  const fromClient = request.body === request.client.incoming;
  // The same request with its body transformed: a chosen target and the client's trailers (the body stays chunked) go on with it.
  return {
    ...request,
    headers,
    body: requestChain(request.body!, fromClient, guard(transform), decoding).on('error', ignoreError),
    replayBody:
      replay === null
        ? null
        : () => requestChain(replay(), false, guard(factory(context) ?? new Transform({ transform: passThrough })), decoding).on('error', ignoreError),
  };
}

/**
 * Sends a request whose body is decoded on its way up. Whatever the attempt made of it, a body that passed
 * the decoded bound gets 413, and one that did not decode gets 400: the client's errors, not the relay's.
 */
async function sendDecoded(next: Handler, context: StageContext, decoding: RequestDecoding, request: ProxyRequest): Promise<ProxyResponse> {
  try {
    return await next(request);
  } catch (error) {
    const bound = decoding.bound;
    if (bound?.tripped() === true) return refuseTooLarge(context, request, bound.limit, `the ${bound.coding} body decodes to more than ${bound.limit} bytes`);
    if (decoding.failure !== null) return refuseUndecodable(context, request, decoding.coding, decoding.failure);
    throw error;
  }
}

/** The 400 for a request body that is not what its `Content-Encoding` says, logged at warn as `transformRequest` logs it. */
function refuseUndecodable(context: StageContext, request: ProxyRequest, coding: BodyCoding, failure: Error): ProxyResponse {
  const fields = { method: request.method, path: loggedPath(request.path, context), error: `the ${coding} body does not decode: ${failure.message}` };
  context.logger.warn(fields, 'request stream transform: the body cannot be read: 400 sent');
  const answer = badRequestBodyResponse();
  // The rest of the client's body is read and dropped: the connection is not worth keeping for it (as for a 413).
  answer.headers.connection = 'close';
  return answer;
}

/** upstream body → decoder → transform → gate → encoder, each link tearing the others down on failure. */
function responseChain(source: Readable, coding: BodyCoding | 'identity', transform: Transform, gate: HeadGate): Readable {
  const first = coding === 'identity' ? transform : createDecoder(coding);
  let tail: Readable = linkUpstreamBody(source, first);
  if (first !== transform) tail = link(tail, transform);
  tail = link(tail, gate);
  return coding === 'identity' ? tail : link(tail, createEncoder(coding, defaultLevels));
}

/**
 * request body → decoder (its own failure the client's: 400) → (decoded bytes counted) → transform → encoder;
 * a body sent as it is goes straight into the transform.
 */
function requestChain(source: Readable, fromClient: boolean, transform: Transform, decoding: RequestDecoding | null): Readable {
  const first = decoding === null ? transform : decoding.decoder();
  if (fromClient) linkClientBody(source, first);
  else link(source, first);
  if (decoding === null) return transform;
  const counter = decoding.bound?.counter() ?? null;
  linkClientDecoder(first, counter ?? transform);
  if (counter !== null) link(counter, transform);
  const tail = link(transform, createEncoder(decoding.coding, defaultLevels));
  counter?.watch(tail);
  return tail;
}

function passThrough(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
  callback(null, chunk);
}

const kOriginal = Symbol('relay.body.originalTransform');
type Guarded = Transform & { [kOriginal]?: Transform['_transform'] };

/** Makes a Transform whose `_transform` throws fail the stream instead of the process. */
function guard(transform: Transform): Transform {
  const guarded = transform as Guarded;
  guarded[kOriginal] = transform._transform;
  guarded._transform = guardedTransform;
  return transform;
}

function guardedTransform(this: Guarded, chunk: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
  try {
    this[kOriginal]!.call(this, chunk, encoding, callback);
  } catch (error) {
    callback(error as Error);
  }
}

/**
 * A pass-through that tells when the first byte (or the end) came out of the transform before it:
 * the response head is sent then, so a transform failing on its first chunk can still get a 502.
 */
class HeadGate extends Transform {
  readonly opened: Promise<void>;
  private open: (() => void) | null = null;
  private fail: ((error: Error) => void) | null = null;

  constructor() {
    super();
    this.opened = new Promise<void>((resolve, reject) => {
      this.open = resolve;
      this.fail = reject;
    });
    this.on('error', onGateError);
    this.on('close', onGateClose);
  }

  settle(error: Error | null): void {
    const [open, fail] = [this.open, this.fail];
    this.open = this.fail = null;
    if (error === null) open?.();
    else fail?.(error);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.settle(null);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.settle(null);
    callback();
  }
}

function onGateError(this: HeadGate, error: Error): void {
  this.settle(error);
}

function onGateClose(this: HeadGate): void {
  this.settle(new Error('the body closed before the transform gave any output'));
}
