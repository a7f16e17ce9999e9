import type { ClientInfo } from '@relay/core';

/**
 * The messages a WebSocket session relayed, each way, counted as they pass (live: read it any
 * time, final once the session has ended). A message is a whole text or binary message, however
 * many frames carried it; pings, pongs and close frames are not messages.
 */
export interface WebSocketCounts {
  /** Messages from the client passed on to the upstream. */
  readonly clientMessages: number;
  /** Messages from the upstream passed on to the client. */
  readonly upstreamMessages: number;
}

/**
 * Where a session's counts hang on its `ClientInfo`. A registered symbol, so an observer reads
 * them without importing this package (`@relay/observe` does, for its metrics).
 */
const kCounts = Symbol.for('relay.websocket.counts');
type Slot = ClientInfo & { [kCounts]?: WebSocketCounts };

/**
 * The counts of the WebSocket session a client request opened, `undefined` when it opened none
 * (not a handshake, refused, or another WebSocket transport). For your stages' and tools' records.
 *
 * @example
 * socket.once('close', () => console.log(webSocketCounts(request.client)?.clientMessages));
 */
export function webSocketCounts(client: ClientInfo): WebSocketCounts | undefined {
  return (client as Slot)[kCounts];
}

/** @internal Hangs a session's counts on its client request. */
export function attachCounts(client: ClientInfo, counts: WebSocketCounts): void {
  (client as Slot)[kCounts] = counts;
}
