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
  sendError(res, error);
  return true;
}
