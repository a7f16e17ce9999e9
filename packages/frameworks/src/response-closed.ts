import type { ServerResponse } from 'node:http';

/**
 * Resolves when the response has closed (sent, or the client left): a framework's middleware
 * chain awaits it, so middleware in front of the relay see the whole exchange.
 *
 * @example
 * const closed = responseClosed(ctx.res);
 * relay.dispatch(ctx.req, ctx.res, route);
 * await closed;
 */
export function responseClosed(res: ServerResponse): Promise<void> {
  if (res.closed) return Promise.resolve();
  return new Promise((resolve) => res.once('close', resolve));
}
