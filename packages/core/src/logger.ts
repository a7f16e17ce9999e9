import type { RelayError } from './errors.js';
import type { Logger, ProxyRequest, TransportConfig } from './types.js';

/**
 * A request target as log lines show it: the path alone, since query strings often carry tokens
 * (always for browser WebSockets), or the whole target when the relay was built with `logQuery: true`.
 *
 * @example
 * loggedPath('/login?token=abc', config); // '/login'
 */
export function loggedPath(target: string, config: { readonly logQuery?: boolean }): string {
  const shown = loggableTarget(target);
  if (config.logQuery === true) return shown;
  const queryStart = shown.indexOf('?');
  return queryStart === -1 ? shown : shown.slice(0, queryStart);
}

/**
 * A request target as a log line may show it: no userinfo and no fragment. A fragment is never part
 * of a request (the relay refuses a target with one, 400), but OAuth's implicit flow puts the token
 * there (`/callback#access_token=…`), so the refusal's own log line must not repeat it.
 */
export function loggableTarget(target: string): string {
  const hash = target.indexOf('#');
  return withoutUserinfo(hash === -1 ? target : target.slice(0, hash));
}

/** `scheme://user:password@` at the start of an absolute-form target. */
const userinfo = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i;

/**
 * An absolute-form request target without its userinfo (`http://user:pw@host/p` → `http://host/p`),
 * for log lines: the relay refuses such a target (400), and its log line must not carry the password.
 */
export function withoutUserinfo(target: string): string {
  return target.charCodeAt(0) === 0x2f || !target.includes('@') ? target : target.replace(userinfo, '$1');
}

function ignore(): void {}

type LogMethod = Logger['info'];

/**
 * The user's logger with each method guarded: a logger that throws (a sink closed under it, a
 * serializer that fails on a field) must not end the process from a socket's `error` listener,
 * nor turn a served request into a failed one. Its throw is dropped; a process warning says so once.
 */
export function guardedLogger(logger: Logger): Logger {
  if (logger === silentLogger) return logger;
  return Object.freeze({
    debug: guarded(logger, logger.debug),
    info: guarded(logger, logger.info),
    warn: guarded(logger, logger.warn),
    error: guarded(logger, logger.error),
  });
}

let warned = false;

function guarded(logger: Logger, method: LogMethod): LogMethod {
  return function guardedLog(fields, message) {
    try {
      const result: unknown = method.call(logger, fields, message);
      // An async sink's failure would be an unhandled rejection: dropped as a throw is.
      if (typeof (result as Promise<unknown> | undefined)?.then === 'function') (result as Promise<unknown>).then(undefined, ignore);
    } catch (error) {
      if (warned) return;
      warned = true;
      process.emitWarning(`the relay's logger threw, its line is dropped: ${error instanceof Error ? error.message : String(error)}`, { code: 'RELAY_LOGGER_THREW' });
    }
  };
}

/**
 * Throws a TypeError naming `option` unless `logger` has the four methods a relay calls (pino,
 * winston's child loggers and console-like objects do). Shared by `createRelay` and the gateway.
 *
 * @example
 * assertLogger(options.logger, 'serve: logger');
 */
export function assertLogger(logger: unknown, option: string): asserts logger is Logger {
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (logger as Partial<Logger> | null)?.[level] !== 'function') throw new TypeError(`${option} must have a ${level}(fields, message) method`);
  }
}

/** A logger that drops everything: the default when `createRelay` gets none. */
export const silentLogger: Logger = Object.freeze({ debug: ignore, info: ignore, warn: ignore, error: ignore });

/**
 * Logs one failed upstream attempt as one structured line: `method`, `url` (without the query
 * unless `logQuery`), `attempt`, `code` and `error`; warn for failures and timeouts, debug for aborts (the client left, shutdown).
 * A 4xx is the client's fault, not the upstream's (a malformed WebSocket handshake, a body over
 * `bodyLimit`): see `logClientRefusal`.
 * Transports that call it set `logsFailures` on their bound transport; the relay logs for
 * those that do not.
 */
export function logUpstreamFailure(config: Pick<TransportConfig, 'logger' | 'target' | 'logQuery'>, request: ProxyRequest, error: RelayError): void {
  if (error.status >= 400 && error.status < 499) {
    logClientRefusal(config, request, error);
    return;
  }
  const fields = {
    method: request.method,
    url: (request.target ?? config.target).origin + loggedPath(request.path, config),
    attempt: request.attempt,
    code: error.code,
    error: error.message,
  };
  if (error.code === 'ERR_CLIENT_ABORTED' || error.code === 'ERR_SHUTTING_DOWN') {
    config.logger.debug(fields, 'upstream request aborted');
  } else if (error.status === 504) config.logger.warn(fields, 'upstream request timed out');
  else config.logger.warn(fields, 'upstream request failed');
}

/**
 * A request the transport refused for the client's fault (400 `ERR_BAD_HANDSHAKE`, 413
 * `ERR_BODY_TOO_LARGE` …), in the client's words: `method`, `path`, `code`, `error`, no upstream
 * `url` or `attempt` (no upstream failed; a gateway reads a warn line with `attempt` as its
 * target's failure). At info, as nginx logs a client's error.
 */
function logClientRefusal(config: Pick<TransportConfig, 'logger' | 'logQuery'>, request: ProxyRequest, error: RelayError): void {
  const fields = { method: request.method, path: loggedPath(request.path, config), code: error.code, error: error.message };
  config.logger.info(fields, error.code === 'ERR_BAD_HANDSHAKE' ? 'bad WebSocket handshake from client' : 'client request refused');
}
