import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { RelayError, toRelayError } from './errors.js';
import type { ProxyRequest, Timeouts, TransportConfig } from './types.js';

const idempotentWithoutBody: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE', 'PUT']);

/**
 * Whether a failed attempt may be sent once more on a new connection: the upstream closed a
 * kept-alive connection just as it was reused (reset or broken pipe before any answer), and the
 * request is idempotent with no body, so nothing can have been processed twice.
 */
export function isStaleConnectionFailure(error: Error, reusedSocket: boolean, request: ProxyRequest): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (
    reusedSocket &&
    (code === 'ECONNRESET' || code === 'EPIPE') &&
    request.body === null &&
    idempotentWithoutBody.has(request.method)
  );
}

/** The error for a request body stream that failed: the client's own fails only when the client went away. */
export function bodyFailure(body: unknown, request: ProxyRequest, error: Error): RelayError {
  return body === request.client.incoming
    ? new RelayError('ERR_CLIENT_ABORTED', `client request body failed: ${error.message}`, { cause: error })
    : toRelayError(error);
}

/** The error for a timeout in one phase of an attempt. */
export function timeoutError(phase: 'connect' | 'write' | 'read' | 'pool', timeouts: Readonly<Timeouts>): RelayError {
  switch (phase) {
    case 'connect':
      return new RelayError('ERR_CONNECT_TIMEOUT', `upstream connect timed out after ${timeouts.connect} ms`);
    case 'write':
      return new RelayError('ERR_WRITE_TIMEOUT', `upstream write timed out after ${timeouts.write} ms`);
    case 'read':
      return new RelayError('ERR_READ_TIMEOUT', `upstream read timed out after ${timeouts.read} ms`);
    case 'pool':
      return new RelayError('ERR_POOL_TIMEOUT', `no upstream connection free within ${timeouts.pool} ms`);
  }
}

/** Whether requests already wait for a connection of `agent` (its pool is full). */
export function hasQueuedRequests(agent: Agent): boolean {
  for (const _ in agent.requests) return true;
  return false;
}

/**
 * The error for an upstream request that closed before a usable response head: Node's client
 * emits no `error` when the upstream answers `101 Switching Protocols` (with `Upgrade`) to a
 * request that asked for no upgrade: it only closes the connection.
 */
export function closedWithoutAnswer(status: number | undefined): RelayError {
  if (status === 101) return switchedProtocols();
  return new RelayError('ERR_UPSTREAM_RESET', 'upstream connection closed before a response head');
}

/**
 * The status of the head an upstream request read, if any. Node keeps it as `request.res`
 * (untyped in @types/node) even when it emits no `response` event, as for a `101` with `Upgrade`.
 */
export function headStatus(upstream: ClientRequest): number | undefined {
  return (upstream as ClientRequest & { res?: IncomingMessage | null }).res?.statusCode;
}

/** The error for a `101 Switching Protocols` answer to a plain HTTP request: a client can do nothing with it. */
export function switchedProtocols(): RelayError {
  return new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream answered 101 Switching Protocols to a request that asked for no upgrade');
}

/** Logs bytes an upstream sent after a complete response: the response is kept, the connection closed. */
export function logTrailingBytes(config: Pick<TransportConfig, 'logger' | 'target'>, request: ProxyRequest, error: Error): void {
  config.logger.warn(
    { method: request.method, url: config.target.origin + request.path, attempt: request.attempt, code: 'ERR_UPSTREAM_PROTOCOL', error: error.message },
    'upstream sent bytes after a complete response: the response is relayed, the connection closed',
  );
}

/** The error for a client that left the response unread longer than `limit` ms. */
export function slowReaderError(limit: number): RelayError {
  return new RelayError('ERR_CLIENT_TIMEOUT', `client did not read the response for ${limit} ms`);
}

/**
 * Logs a fault of the client's side (never worded as the upstream's): the relay stopped reading
 * the upstream because the client did not read, or the client uploaded too slowly.
 */
export function logClientFault(config: Pick<TransportConfig, 'logger' | 'target'>, request: ProxyRequest, error: RelayError): void {
  config.logger.info(
    { method: request.method, path: request.path, attempt: request.attempt, code: error.code, error: error.message },
    'client too slow: its request is cut',
  );
}

/**
 * The ms a paused download may still wait before `slowClientTimeout` (`limit`) runs out, counted
 * from `since` (when the connection last moved); 0 or less means it has run out. A `limit` of
 * 0 waits for ever.
 */
export function slowReaderBudget(limit: number, since: number): number {
  return limit === 0 ? Infinity : limit - (Date.now() - since);
}

/** An `error` listener for a stream this attempt has let go of. */
export function ignoreError(): void {}
