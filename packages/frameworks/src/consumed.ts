import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError, type Relay } from '@relay/core';
import { loggedPath, sendError } from '@relay/core/transport';

/**
 * Answers 500 (`ERR_BODY_CONSUMED`) with a log line and returns true when something before the
 * relay already read a request body (a body parser mounted in front of it): the relay streams
 * bodies and has nothing left to send. Returns false when the body is untouched or empty.
 *
 * @example
 * if (refuseConsumedBody(relay, ctx.req, ctx.res)) return;
 */
export function refuseConsumedBody(relay: Relay, req: IncomingMessage, res: ServerResponse): boolean {
  if (!req.readableDidRead && !req.readableEnded) return false;
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || Number(length) === 0)) return false;
  const error = new RelayError('ERR_BODY_CONSUMED', 'the request body was read before the relay: mount the relay before any body parser');
  relay.logger.error({ method: req.method, url: loggedPath(req.url ?? '/', relay).slice(0, 256), code: error.code, error: error.message }, 'request body was consumed before the relay');
  sendError(res, error, req.method === 'HEAD');
  return true;
}

/** Resolves when the response has closed (sent, or the client left): framework middleware chains can await it. */
export function responseClosed(res: ServerResponse): Promise<void> {
  if (res.closed) return Promise.resolve();
  return new Promise((resolve) => res.once('close', resolve));
}

/**
 * Throws a TypeError naming `where` when `relay` is not a relay made by `createRelay`.
 *
 * @example
 * assertRelay(options.relay, 'relayPlugin: relay');
 */
export function assertRelay(relay: unknown, where: string): asserts relay is Relay {
  const candidate = relay as Partial<Relay> | null;
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.dispatch !== 'function' || typeof candidate.dispatchUpgrade !== 'function') {
    throw new TypeError(`${where} must be a relay made by createRelay() from @relay/core`);
  }
}
