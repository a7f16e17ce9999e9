import type { IncomingMessage } from 'node:http';
import { RelayError } from '../errors.js';
import { loggedPath } from '../logger.js';
import type { Logger } from '../types.js';
import { isWebSocketUpgrade } from './plain-upgrade.js';

/** `upgrade` among the `Connection` options. */
const connectionUpgrade = /(?:^|,)\s*upgrade\s*(?:,|$)/i;

/**
 * A WebSocket handshake (`Upgrade: websocket` with `Connection: upgrade`, what makes node:http
 * treat a request as an upgrade). node gives one to the request handler instead of the `upgrade`
 * event when the server has no `upgrade` listener. A stray `Upgrade` that `Connection` does not
 * list is no offer (RFC 9110 §7.8) and stays a plain request; HTTP/2 requests carry neither field.
 */
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  const headers = req.headers;
  if (headers.upgrade === undefined) return false;
  return isWebSocketUpgrade(req) && connectionUpgrade.test(headers.connection ?? '');
}

/** How often the warn line is written per relay: a flood of handshakes writes one a minute. */
const warnInterval = 60_000;

/**
 * Refuses the WebSocket handshakes that reach `relay.handle` or `relay.dispatch`: a request
 * handler has no socket to switch protocols on, and relayed as the plain GET it also is (Upgrade
 * stripped) the client would get whatever the upstream answers a GET, the misconfiguration
 * unseen. 501 `ERR_UPGRADE_UNSUPPORTED`, the answer `relay.upgrade` gives without `websocket`,
 * and a warn line that names the missing `upgrade` listener, at most once a minute (the rest at
 * debug, counted in the next warn's `suppressed`).
 *
 * @example
 * if (isWebSocketHandshake(req)) return refuse(misrouted.refusal(req, req.url ?? '', 'relay.handle'));
 */
export class MisroutedHandshakes {
  private lastWarned = -Infinity;
  private suppressed = 0;

  private readonly logger: Logger;
  readonly logQuery: boolean;
  /** The relay has a `websocket` transport: the fix is only the missing listener. */
  private readonly hasWebSocket: boolean;

  constructor(settings: { readonly logger: Logger; readonly logQuery: boolean; readonly hasWebSocket: boolean }) {
    this.logger = settings.logger;
    this.logQuery = settings.logQuery;
    this.hasWebSocket = settings.hasWebSocket;
  }

  refusal(req: IncomingMessage, rawTarget: string, entry: 'relay.handle' | 'relay.dispatch'): RelayError {
    const message = `WebSocket handshake reached ${entry}: ${this.fix(entry)}`;
    const fields: Record<string, unknown> = { method: req.method, path: loggedPath(rawTarget, this).slice(0, 256), code: 'ERR_UPGRADE_UNSUPPORTED' };
    const now = Date.now();
    if (now - this.lastWarned < warnInterval) {
      this.suppressed++;
      this.logger.debug(fields, message);
    } else {
      if (this.suppressed > 0) fields.suppressed = this.suppressed;
      this.lastWarned = now;
      this.suppressed = 0;
      this.logger.warn(fields, message);
    }
    return new RelayError('ERR_UPGRADE_UNSUPPORTED', message);
  }

  /** What the operator has to add: the server's `upgrade` listener and, without one, the transport. */
  private fix(entry: string): string {
    const listener = entry === 'relay.handle'
      ? "add server.on('upgrade', relay.upgrade)"
      : "route the server's 'upgrade' event to relay.dispatchUpgrade (routeUpgrades from @relay/connect-adapter)";
    return this.hasWebSocket ? listener : `${listener} and createRelay({ websocket: websocket() }) from @relay/ws`;
  }
}
