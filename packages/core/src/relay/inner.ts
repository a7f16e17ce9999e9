import { toRelayError } from '../errors.js';
import { attemptEvents } from '../events.js';
import { logUpstreamFailure } from '../logger.js';
import { assertSafeUpstreamPath, pathOnly } from '../request/path.js';
import { maxForwardsChecked } from './max-forwards.js';
import type { BoundTransport, Handler, Logger, ProxyRequest, ProxyResponse, Stage, TransportConfig } from '../types.js';

/**
 * The innermost handler of a pipeline: the bound transport, its attempts published on
 * diagnostics_channel, each failure logged once, the path the stages leave checked (and an
 * attempt cut before it was sent refused), and a TRACE or OPTIONS with `Max-Forwards: 0`
 * answered instead of sent.
 */
export function innerHandler(transport: BoundTransport, config: TransportConfig, stages: readonly Stage[]): Handler {
  return checkedAttempt(stages, maxForwardsChecked(attemptEvents(loggedFailures(transport, config), config.target)), config.logger);
}

/** The transport, wrapped so each upstream failure is one structured log line. */
function loggedFailures(transport: BoundTransport, config: Pick<TransportConfig, 'logger' | 'target' | 'logQuery'>): Handler {
  // A transport that logs its own failures runs bare: no extra async frame per request.
  if (transport.logsFailures === true) return transport.handle;
  const send = transport.handle;
  return async function transport(request: ProxyRequest): Promise<ProxyResponse> {
    try {
      return await send(request);
    } catch (error) {
      const relayError = toRelayError(error);
      logUpstreamFailure(config, request, relayError);
      throw relayError;
    }
  };
}

/**
 * The checks of each attempt the stages leave, before anything is sent. Its path: a stage may set
 * `request.path`, and what it sets goes through the client's path rules (`ERR_BAD_PATH`, 400). Its
 * bound: an attempt whose `request.bound` was cut while an inner stage held it fails with the
 * cut's reason here, before its transport makes or registers anything (the registered attempt may
 * be a later run's, which its cleanup would unregister). Without stages the client's path was
 * checked already and nothing bounds the attempt: no wrapper.
 */
function checkedAttempt(stages: readonly Stage[], send: Handler, logger: Logger): Handler {
  if (stages.length === 0) return send;
  return function transport(request: ProxyRequest): Promise<ProxyResponse> {
    const cut = request.bound?.reason;
    if (cut != null) return Promise.reject(cut);
    try {
      assertSafeUpstreamPath(request.path);
    } catch (error) {
      const relayError = toRelayError(error);
      logger.warn({ method: request.method, path: pathOnly(request.path).slice(0, 256), code: relayError.code }, `a stage set an unsafe upstream path: ${relayError.message}`);
      return Promise.reject(relayError);
    }
    return send(request);
  };
}
