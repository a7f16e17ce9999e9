import { RelayError, type Handler, type Logger, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
import { loggedPath } from '@relay/core/transport';
import { BufferStream } from './buffer-stream.js';
import { collectBody } from './collect.js';
import { badRequestBodyResponse } from './error-response.js';
import { mediaType } from './media-type.js';
import { bodyCoding } from './codings.js';
import { rewriteBody, RewriteError, textEncoding, type BodyAs, type BodyResult, type BodyValue } from './rewrite.js';
import { resolveBufferedOptions, type BufferedSettings, type TransformOptions } from './transform-options.js';

/** What a request transform is told besides the body. `request.headers` may be changed in place. */
export interface RequestTransformContext {
  readonly request: ProxyRequest;
}

/** A request transform: the body in, the new body out (`undefined`: unchanged); may be async. */
export type RequestTransformer<A extends BodyAs = 'text'> = (
  body: BodyValue<A>,
  context: RequestTransformContext,
) => BodyResult<A> | Promise<BodyResult<A>>;

/**
 * Rewrites whole request bodies before they go upstream: a body of a matching type, up to
 * `maxBytes`, is read, decoded, handed to `fn`, encoded again with its `Content-Encoding` and sent
 * with a fresh `Content-Length`. The result is replayable: put it before `retry()` and every attempt
 * sends the transformed bytes, `fn` running once. Larger bodies and other types stream untouched. A
 * body that cannot be decoded or parsed gets 400; an `fn` that throws, 500 (`ERR_INTERNAL`).
 *
 * @example
 * transformRequest((data: any) => ({ ...data, source: 'gateway' }), { as: 'json' });
 */
export function transformRequest<A extends BodyAs = 'text'>(fn: RequestTransformer<A>, options?: TransformOptions<A>): Stage {
  const settings = resolveBufferedOptions(fn, options, 'transformRequest');
  return {
    name: 'transform-request',
    wrap(next: Handler, context): Handler {
      const { logger, timeouts, logQuery } = context;
      return function transformRequestStage(request: ProxyRequest): Promise<ProxyResponse> {
        if (request.body === null || !settings.isTransformed(mediaType(request.headers['content-type']))) return next(request);
        const { headers } = request;
        const declared = headers['content-length'];
        if (declared !== undefined && Number(declared) > settings.maxBytes) return next(request);
        if (bodyCoding(headers['content-encoding']) === null || textEncoding(headers['content-type'], settings.as) === null) return next(request);
        return rewriteRequest(settings, fn as RequestTransformer<BodyAs>, { next, logger, logQuery: logQuery === true, stallMs: timeouts.write }, request);
      };
    },
  };
}

interface RequestPipe {
  next: Handler;
  logger: Logger;
  /** Log lines carry the query (`createRelay({ logQuery })`). */
  logQuery: boolean;
  stallMs: number;
}

async function rewriteRequest(settings: BufferedSettings, fn: RequestTransformer<BodyAs>, pipe: RequestPipe, request: ProxyRequest): Promise<ProxyResponse> {
  answerContinue(request);
  const bytes = await collectBody(request.body!, settings.maxBytes, { side: 'request', stallMs: pipe.stallMs });
  // Larger than the limit: what was read is back in the stream, which goes on untouched.
  if (bytes === null) return pipe.next(request);
  const context: RequestTransformContext = { request };
  let rewritten: Buffer | null;
  try {
    rewritten = await rewriteBody(bytes, request.headers, (value) => fn(value, context), { as: settings.as, maxBytes: settings.maxBytes });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const fields = { method: request.method, path: loggedPath(request.path, pipe), error: message };
    if (error instanceof RewriteError && error.stage === 'decode') {
      pipe.logger.warn(fields, 'request transform: the body cannot be read: 400 sent');
      return badRequestBodyResponse();
    }
    pipe.logger.error(fields, 'request transform failed: 500 sent');
    throw new RelayError('ERR_INTERNAL', `request transform: ${message}`, { cause: error });
  }
  const final = rewritten ?? bytes;
  request.headers['content-length'] = String(final.length);
  return pipe.next({
    method: request.method,
    path: request.path,
    headers: request.headers,
    body: final.length === 0 ? null : new BufferStream(final),
    // Every attempt of a retry sends these same transformed bytes.
    replayBody: final.length === 0 ? null : () => new BufferStream(final),
    attempt: request.attempt,
    client: request.client,
    // A target a stage before chose (router, balance). No trailers: the body now has a Content-Length.
    target: request.target,
    // A retry deadline's cut of this attempt reaches it.
    bound: request.bound,
  });
}

/**
 * A client that sent `Expect: 100-continue` end to end (`server.on('checkContinue', relay.handle)`)
 * waits for the 100 before its body, and the body is read here, before any upstream is asked: the
 * relay answers 100 itself and the upstream gets the buffered body without `Expect`, as nginx does
 * with request buffering. (Without a `checkContinue` listener node:http has answered already and
 * the request carries no `expect`.)
 */
function answerContinue(request: ProxyRequest): void {
  if (request.headers.expect === undefined) return;
  delete request.headers.expect;
  request.client.sendContinue();
}
