import type { IncomingMessage } from 'node:http';
import { RelayError, toRelayError } from '../errors.js';
import { publishRequestRefused } from '../events.js';
import { loggedPath } from '../logger.js';
import { pathOnly } from '../request/path.js';
import { resolveClientAddress, unmapIPv4 } from '../request/trust-proxy.js';
import { buildRequest, type Entry, type RequestRules } from '../request/build.js';
import type { ClientInfo } from '../request/client.js';
import type { Handler, Logger, ProxyRequest, Target } from '../types.js';
import type { Lifecycle } from './lifecycle.js';

/** An exchange as the front sees it: HTTP (`HttpExchange`) or a WebSocket handshake (`UpgradeExchange`). */
export interface Exchange {
  readonly req: IncomingMessage;
  client: ClientInfo | null;
  /** Runs the request through the pipeline and answers the client. */
  start(pipeline: Handler, request: ProxyRequest): void;
  /** Answers an error before any stage ran. */
  refuse(error: RelayError): void;
}

/** What the front needs of its relay. */
export interface FrontHost {
  readonly rules: RequestRules;
  readonly lifecycle: Lifecycle;
  readonly logger: Logger;
  readonly target: Target;
  readonly logQuery: boolean;
}

/**
 * The one entry path of every request, HTTP or WebSocket, from `handle`, `dispatch`, `upgrade`
 * or `dispatchUpgrade`: build the upstream request (which checks the path, the mount and the
 * head), make sure the relay runs (starting it on demand), then hand it to the pipeline.
 */
export function serve(host: FrontHost, exchange: Exchange, pipeline: Handler, rawTarget: string, entry: Entry): void {
  let request: ProxyRequest;
  try {
    request = buildRequest(host.rules, exchange.req, rawTarget, entry);
  } catch (error) {
    refuseInvalid(host, exchange, rawTarget, error);
    return;
  }
  exchange.client = request.client;
  const lifecycle = host.lifecycle;
  if (lifecycle.state === 'running') {
    exchange.start(pipeline, request);
    return;
  }
  if (!lifecycle.startsOnDemand) {
    refuse(host, exchange, rawTarget, shuttingDown(host, exchange.req));
    return;
  }
  lifecycle.start().then(
    () => exchange.start(pipeline, request),
    (error: unknown) => refuse(host, exchange, rawTarget, startFailed(host, error)),
  );
}

/** Answers `error` before any stage ran, and publishes the refusal (`request:refused`). */
export function refuse(host: FrontHost, exchange: Exchange, rawTarget: string, error: RelayError): void {
  publishRequestRefused(host.target, () => ({
    method: exchange.req.method ?? 'GET',
    path: pathOnly(rawTarget).slice(0, 256),
    address: exchange.req.socket?.remoteAddress ?? '',
    clientAddress: refusedClient(host, exchange),
    status: error.status,
    code: error.code,
    upgrade: 'upgrade' in exchange.req.headers,
    httpVersion: exchange.req.httpVersion ?? '1.1',
  }));
  exchange.refuse(error);
}

/**
 * Answers a request that cannot be relayed (what `buildRequest` refuses, or a front door before
 * it), with a log line at its code's level: `error` for a body read before the relay.
 */
export function refuseInvalid(host: FrontHost, exchange: Exchange, rawTarget: string, error: unknown): void {
  refuse(host, exchange, rawTarget, badRequest(host, exchange.req, rawTarget, error));
}

/**
 * The client of a refused request behind the proxies the relay trusts: the built request's when
 * there is one (refused on shutdown), else read from the head as `buildRequest` would have.
 */
function refusedClient(host: FrontHost, exchange: Exchange): string {
  if (exchange.client !== null) return exchange.client.clientAddress;
  const peer = unmapIPv4(exchange.req.socket?.remoteAddress ?? '');
  const forwardedFor = exchange.req.headers['x-forwarded-for'];
  return forwardedFor === undefined ? peer : resolveClientAddress(host.rules.trustProxy, peer, String(forwardedFor));
}

function badRequest(host: FrontHost, req: IncomingMessage, rawTarget: string, error: unknown): RelayError {
  const relayError = toRelayError(error);
  const level = relayError.code === 'ERR_NOT_MOUNTED' ? 'debug' : relayError.code === 'ERR_BODY_CONSUMED' ? 'error' : 'warn';
  host.logger[level]({ method: req.method, path: loggedPath(rawTarget, host).slice(0, 256), code: relayError.code }, relayError.message);
  return relayError;
}

function shuttingDown(host: FrontHost, req: IncomingMessage): RelayError {
  const error = new RelayError('ERR_SHUTTING_DOWN', host.lifecycle.state === 'stopping' ? 'relay is shutting down' : 'relay is shut down');
  host.logger.info({ method: req.method, code: error.code }, error.message);
  return error;
}

function startFailed(host: FrontHost, cause: unknown): RelayError {
  const error = new RelayError('ERR_NOT_STARTED', 'relay could not start', { cause });
  host.logger.error({ code: error.code, error: cause instanceof Error ? cause.message : String(cause) }, 'relay could not start: request refused');
  return error;
}
