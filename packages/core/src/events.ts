import { channel } from 'node:diagnostics_channel';
import type { Duplex, Readable } from 'node:stream';
import { toRelayError, type RelayError } from './errors.js';
import type { Handler, ProxyRequest, ProxyResponse, Target } from './types.js';
import { kAttemptMessage } from './tags.js';

/**
 * The `node:diagnostics_channel` channels Relay publishes on, the way undici publishes
 * `undici:request:*`. A message is built only when the channel has subscribers: without them an
 * event costs one property read.
 *
 * @example
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(relayChannels.attemptError, (message) => console.log((message as AttemptErrorMessage).error.code));
 */
export const relayChannels = Object.freeze({
  /** A client request was accepted and its first attempt's request built (HTTP and WebSocket handshakes). `RequestStartMessage`. */
  requestStart: 'relay:request:start',
  /** The client request is over: its response finished or its connection closed; a handshake was answered. `RequestEndMessage`. */
  requestEnd: 'relay:request:end',
  /**
   * A client request was answered by the relay itself before any stage ran: outside the mount
   * path (404), an unsafe path or head (400/501), or the relay shutting down (503). `RequestRefusedMessage`.
   */
  requestRefused: 'relay:request:refused',
  /** An upstream attempt goes to the transport. `AttemptMessage`. */
  attemptStart: 'relay:attempt:start',
  /** An upstream attempt got its response head. `AttemptResponseMessage`. */
  attemptResponse: 'relay:attempt:response',
  /** An upstream attempt's response body ended, broke off or was discarded (a retry). `AttemptResponseMessage`. */
  attemptEnd: 'relay:attempt:end',
  /** An upstream attempt failed before its response head. `AttemptErrorMessage`. */
  attemptError: 'relay:attempt:error',
  /** A WebSocket session began: the client's handshake was accepted. `AttemptMessage` of the handshake. */
  websocketOpen: 'relay:websocket:open',
  /** A WebSocket session ended: the client connection closed. `AttemptMessage` of the handshake. */
  websocketClose: 'relay:websocket:close',
  /** `relay.startup()` finished. `RelayLifecycleMessage`. */
  relayStart: 'relay:start',
  /** `relay.shutdown()` finished. `RelayLifecycleMessage`. */
  relayStop: 'relay:stop',
});

/** `relay:start` and `relay:stop`. */
export interface RelayLifecycleMessage {
  readonly target: Target;
}

/** `relay:request:start`. `request` is the first attempt's request; `request.client` identifies the client request in every later event. */
export interface RequestStartMessage {
  readonly target: Target;
  readonly request: ProxyRequest;
  /** True for a WebSocket handshake. */
  readonly upgrade: boolean;
}

/** `relay:request:end`. */
export interface RequestEndMessage {
  readonly target: Target;
  readonly request: ProxyRequest;
  /** The status the client got (a handshake: 101 when accepted). */
  readonly status: number;
  /** False when the connection closed before the response was complete. */
  readonly completed: boolean;
}

/** `relay:attempt:start`, `relay:websocket:open`, `relay:websocket:close`. */
/** `relay:request:refused`: no `ProxyRequest` exists, so the message carries what the client sent. */
export interface RequestRefusedMessage {
  readonly target: Target;
  readonly method: string;
  /** The request path as the client sent it, without the query, at most 256 characters. */
  readonly path: string;
  /** The client's address as the socket reports it. */
  readonly address: string;
  /**
   * The client as `ClientInfo.clientAddress` resolves it: behind proxies the relay trusts
   * (`trustProxy`), the one their `X-Forwarded-For` names; else the peer.
   */
  readonly clientAddress: string;
  /** The status the client got. */
  readonly status: number;
  readonly code: RelayError['code'];
  /** True for a WebSocket handshake. */
  readonly upgrade: boolean;
  /** The client's HTTP version: `1.1`, `1.0`, `2.0`. */
  readonly httpVersion: string;
}

export interface AttemptMessage {
  readonly target: Target;
  /** This attempt's request (`request.attempt` counts attempts). */
  readonly request: ProxyRequest;
}

/** `relay:attempt:response` and `relay:attempt:end`. */
export interface AttemptResponseMessage extends AttemptMessage {
  readonly response: ProxyResponse;
}

/** `relay:attempt:error`. */
export interface AttemptErrorMessage extends AttemptMessage {
  readonly error: RelayError;
}

const requestStart = channel(relayChannels.requestStart);
const requestEnd = channel(relayChannels.requestEnd);
const requestRefused = channel(relayChannels.requestRefused);
const attemptStart = channel(relayChannels.attemptStart);
const attemptResponse = channel(relayChannels.attemptResponse);
const attemptEnd = channel(relayChannels.attemptEnd);
const attemptError = channel(relayChannels.attemptError);
const websocketOpen = channel(relayChannels.websocketOpen);
const websocketClose = channel(relayChannels.websocketClose);
const relayStart = channel(relayChannels.relayStart);
const relayStop = channel(relayChannels.relayStop);

/** @internal Publishes `relay:request:start`. */
export function publishRequestStart(target: Target, request: ProxyRequest, upgrade: boolean): void {
  if (requestStart.hasSubscribers) requestStart.publish({ target, request, upgrade } satisfies RequestStartMessage);
}

/** @internal Publishes `relay:request:end`. */
export function publishRequestEnd(target: Target, request: ProxyRequest | null, status: number, completed: boolean): void {
  if (request === null) return;
  // Only an attempt published to a subscriber can be open: nothing read on a request without one.
  if (attemptEnd.hasSubscribers) endOpenAttempt(request);
  if (requestEnd.hasSubscribers) requestEnd.publish({ target, request, status, completed } satisfies RequestEndMessage);
}

/** @internal Publishes `relay:request:refused`; the message is built only for a subscriber. */
export function publishRequestRefused(target: Target, refused: () => Omit<RequestRefusedMessage, 'target'>): void {
  if (requestRefused.hasSubscribers) requestRefused.publish({ target, ...refused() } satisfies RequestRefusedMessage);
}

/** @internal Publishes `relay:start` or `relay:stop`. */
export function publishLifecycle(target: Target, started: boolean): void {
  const lifecycle = started ? relayStart : relayStop;
  if (lifecycle.hasSubscribers) lifecycle.publish({ target } satisfies RelayLifecycleMessage);
}

/** @internal Publishes `relay:websocket:open`, and `relay:websocket:close` when `socket` closes. */
export function publishWebSocketOpen(target: Target, request: ProxyRequest, socket: Duplex): void {
  if (!websocketOpen.hasSubscribers && !websocketClose.hasSubscribers) return;
  const message: AttemptMessage = { target, request };
  if (websocketOpen.hasSubscribers) websocketOpen.publish(message);
  // Once per session, a cold path: a closure reads better than a tag.
  if (websocketClose.hasSubscribers) socket.once('close', () => websocketClose.publish(message));
}

/**
 * @internal Wraps a pipeline's innermost handler so each attempt is published. Without
 * subscribers the wrapper only calls `send`: no promise, no message.
 */
export function attemptEvents(send: Handler, target: Target): Handler {
  return function publishedAttempt(request: ProxyRequest): Promise<ProxyResponse> {
    if (!attemptStart.hasSubscribers && !attemptResponse.hasSubscribers && !attemptEnd.hasSubscribers && !attemptError.hasSubscribers) {
      return send(request);
    }
    return publishAttempt(send, target, request);
  };
}

type TaggedBody = Readable & { [kAttemptMessage]?: AttemptResponseMessage | null };

/** The body of a client's last attempt whose `attempt:end` is not published yet. */
const kOpenAttempt = Symbol('relay.openAttempt');
type AttemptSlot = { [kOpenAttempt]?: TaggedBody | null };

/**
 * Publishes the `attempt:end` a client's last attempt still owes, ahead of what follows it: the
 * next attempt (a retry drains a discarded body in the background) or the request's end (a
 * client that left before the body did). Subscribers see every attempt end inside its request.
 */
function endOpenAttempt(request: ProxyRequest): void {
  const slot = request.client as AttemptSlot;
  const body = slot[kOpenAttempt];
  if (body === undefined || body === null) return;
  slot[kOpenAttempt] = null;
  onBodyDone.call(body);
}

async function publishAttempt(send: Handler, target: Target, request: ProxyRequest): Promise<ProxyResponse> {
  endOpenAttempt(request);
  if (attemptStart.hasSubscribers) attemptStart.publish({ target, request } satisfies AttemptMessage);
  let response: ProxyResponse;
  try {
    response = await send(request);
  } catch (error) {
    if (attemptError.hasSubscribers) attemptError.publish({ target, request, error: toRelayError(error) } satisfies AttemptErrorMessage);
    throw error;
  }
  const message: AttemptResponseMessage = { target, request, response };
  if (attemptResponse.hasSubscribers) attemptResponse.publish(message);
  const body = response.body as TaggedBody | null;
  if (body === null) {
    if (attemptEnd.hasSubscribers) attemptEnd.publish(message);
  } else {
    body[kAttemptMessage] = message;
    (request.client as AttemptSlot)[kOpenAttempt] = body;
    // 'end' comes before the relay's pipe ends the client response; 'close' covers a body that broke off or was discarded.
    body.once('end', onBodyDone);
    body.once('close', onBodyDone);
  }
  return response;
}

function onBodyDone(this: TaggedBody): void {
  const message = this[kAttemptMessage];
  if (message === null || message === undefined) return;
  this[kAttemptMessage] = null;
  if (attemptEnd.hasSubscribers) attemptEnd.publish(message);
}
