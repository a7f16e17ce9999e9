import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError, assertKnownKeys, errorBody, type Relay } from '@relay/core';
import { loggedPath, sendError } from '@relay/core/transport';
import { consumedBody, type ParsedRequest } from './body.js';
import { mountedRoute } from './mount.js';

/** The `next` of a Connect-style middleware: `next()` passes the request on, `next(err)` to the error handlers. */
export type NextFunction = (error?: Error) => void;

/** A Connect-style middleware, what `app.use(path, …)` takes in Express, Connect and Polka. */
export type ConnectMiddleware = (req: IncomingMessage, res: ServerResponse, next: NextFunction) => void;

/** Options of `toConnect`. */
export interface ConnectOptions {
  /**
   * Who answers a relay error that happens before the response starts (400, 502, 503, 504 …):
   * `'respond'` (default) the relay, with its one-line text body; `'next'` the app, through
   * `next(err)` with a `RelayError` whose `status` and `code` say what failed and whose message
   * names no internal address (the detail is in `err.cause` and the relay's log).
   */
  errors?: 'respond' | 'next';
}

const connectOptionNames: readonly string[] = ['errors'];

/** The request fields Express, Connect and Polka add. */
interface FrameworkRequest extends ParsedRequest {
  originalUrl?: unknown;
  baseUrl?: unknown;
}

/**
 * Makes a relay a Connect-style `(req, res, next)` middleware for Express 5, Connect 3 and
 * Polka. The framework strips the mount path; the relay gets the rest joined under its
 * `upstreamPrefix`, and the mount the client used as `X-Forwarded-Prefix` (from
 * `req.originalUrl`). A body a body parser already read is rebuilt from `req.body` and sent
 * with a fresh `Content-Length`; one that cannot be rebuilt gets a 500 (`ERR_BODY_CONSUMED`)
 * and a log line naming the cause. Requests are never passed on with `next()` except when the
 * framework matched the mount inside a path segment (Connect serves `/auth.json` under `/auth`).
 *
 * @example
 * const app = express();
 * app.use('/auth', toConnect(createRelay({ targetBaseUrl: 'http://auth-service:8000' })));
 * // GET /auth/login → GET http://auth-service:8000/login, X-Forwarded-Prefix: /auth
 */
export function toConnect(relay: Relay, options: ConnectOptions = {}): ConnectMiddleware {
  if (relay === null || typeof relay !== 'object' || typeof relay.dispatch !== 'function') {
    throw new TypeError('toConnect(relay) needs a relay made by createRelay() from @relay/core');
  }
  if (options === null || typeof options !== 'object') throw new TypeError('toConnect options must be an object');
  // `{ error: 'next' }` would leave the relay answering errors the app meant to handle, silently.
  assertKnownKeys(options, connectOptionNames, 'toConnect');
  const errors = options.errors ?? 'respond';
  if (errors !== 'respond' && errors !== 'next') throw new TypeError(`errors must be "respond" or "next", got ${JSON.stringify(errors)}`);
  const handOff = errors === 'next';
  const logger = relay.logger;

  return function relayMiddleware(req: IncomingMessage, res: ServerResponse, next: NextFunction): void {
    const request = req as FrameworkRequest;
    const url = req.url ?? '/';
    const route = mountedRoute(url, typeof request.originalUrl === 'string' ? request.originalUrl : url, request.baseUrl);
    if (route === null) {
      next();
      return;
    }
    if (handOff) route.onError = (error) => handToApp(relay, req, res, next, error);
    try {
      route.body = consumedBody(request);
    } catch (error) {
      const relayError = error as RelayError;
      logger.error(
        { method: req.method, url: loggedPath(route.originalUrl!, relay).slice(0, 256), contentType: req.headers['content-type'], code: relayError.code, error: relayError.message },
        'request body was consumed before the relay',
      );
      if (handOff) handToApp(relay, req, res, next, relayError);
      else sendError(res, relayError);
      return;
    }
    // What middleware before the relay did to req.headers (an auth step's X-User-Id) goes upstream, as with http-proxy.
    route.headers = req.headers;
    relay.dispatch(req, res, route);
  };
}

/**
 * `next(err)` with a copy of `error` whose message is the client-safe text (the app's error
 * handler may show it: Express's does outside production); the original stays in `cause`.
 * An error handler that throws (Polka 0.5's default one reads `err.code` as the status) must
 * not crash the process: the relay answers instead.
 */
function handToApp(relay: Relay, req: IncomingMessage, res: ServerResponse, next: NextFunction, error: RelayError): void {
  const safe = new RelayError(error.code, errorBody(error).trimEnd(), { cause: error });
  try {
    next(safe);
  } catch (thrown) {
    relay.logger.error(
      { method: req.method, code: error.code, error: thrown instanceof Error ? thrown.message : String(thrown) },
      "the app's error handler threw on a relay error: the relay answered it",
    );
    sendError(res, error);
  }
}
