import type { Agent } from 'node:http';
import { RelayError, toRelayError } from './errors.js';
import type { ProxyRequest, Timeouts } from './types.js';

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

/** An `error` listener for a stream this attempt has let go of. */
export function ignoreError(): void {}
