import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientInfo, HeaderRecord, ProxyResponse, UpgradeHandoff } from '@relay/core';

/**
 * Keeps an upgraded attempt (a WebSocket `101`, which has no body) counted on its target for the
 * session's whole life, as Envoy counts an upgraded stream as an active request (least-request,
 * `max_requests`) and nginx's `least_conn` counts the proxied connection. The response's hand-off
 * is wrapped: `release` runs once, when the accepted client socket closes, when the hand-off is
 * rejected, or when the client is aborted before either (a stage that replaced the `101` drops the
 * hand-off, and the relay then aborts the client of the handshake). A handshake is a cold path:
 * plain closures.
 *
 * @example
 * if (response.upgrade !== undefined) holdForSession(response, response.upgrade, request.client, () => release(member));
 */
export function holdForSession(response: ProxyResponse, handoff: UpgradeHandoff, client: ClientInfo, release: () => void): void {
  let held = true;
  const signal = client.signal;
  const done = (): void => {
    signal.removeEventListener('abort', done);
    if (!held) return;
    held = false;
    release();
  };
  if (signal.aborted) done();
  else signal.addEventListener('abort', done, { once: true });
  response.upgrade = {
    accept(incoming: IncomingMessage, socket: Duplex, head: Buffer, headers: HeaderRecord): void {
      // From here only the session's socket says when it is over.
      signal.removeEventListener('abort', done);
      try {
        handoff.accept(incoming, socket, head, headers);
      } finally {
        if (socket.destroyed) done();
        else socket.once('close', done);
      }
    },
    reject(reason: Error): void {
      done();
      handoff.reject(reason);
    },
  };
}
