import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { RelayError } from '../errors.js';
import type { ProxyRequest } from '../types.js';
import type { AttemptBound } from './attempt-bound.js';
import { resolveClientAddress } from './trust-proxy.js';

/** A response that can still send informational answers (node:http's and node:http2's both can). */
export interface EarlyHintsTarget {
  readonly headersSent: boolean;
  writeEarlyHints(hints: Record<string, string | string[]>): void;
  writeContinue(): void;
}

/** Something to stop when the client goes away: a transport's in-flight attempt. */
export interface AbortHandler {
  /**
   * The attempt it runs, as the transport got it: a cut of that attempt's bound (`request.bound`,
   * `retry({ deadline })`) stops it too, and only such a cut (never one of another run's attempts).
   */
  readonly request: ProxyRequest;
  onClientAbort(reason: RelayError): void;
}

/** Told what the client was finally answered, when the app answers the relay's errors (`ClientInfo.setAnswerHandler`). */
export interface AnswerHandler {
  /**
   * The client's response is over: `status` is what it got (499 when it left first), `bodyBytes`
   * the `Content-Length` the response declared, `null` when it declared none.
   */
  onClientAnswered(status: number, bodyBytes: number | null): void;
}

/** A trusted peer's `X-Forwarded-For`, walked on the first read of `ClientInfo.clientAddress`. */
interface ForwardedChain {
  readonly trust: boolean | BlockList;
  readonly forwardedFor: string;
}

/** The facts `ClientInfo` is built from. */
export interface ClientFacts {
  address: string;
  scheme: 'http' | 'https';
  host: string;
  mountPath: string;
  originalUrl: string;
  /** The port the client connected to; 0 (the default) when unknown. */
  port?: number;
}

/**
 * Facts about the client of one request, shared by every attempt, and the signal that
 * fires when it goes away.
 *
 * `signal` is made on first use: an `AbortSignal` costs several microseconds, so the
 * hot path uses `aborted` and `setAbortHandler` instead.
 */
export class ClientInfo {
  /**
   * The IP address of the connection's peer as the socket saw it (an IPv4-mapped IPv6 address as
   * IPv4): the client itself, or a proxy in front of the relay. For the client behind trusted
   * proxies, read `clientAddress`.
   */
  readonly address: string;
  /** `https` when the client connection is TLS, else `http`. */
  readonly scheme: 'http' | 'https';
  /** The client's original `Host` (or the authority of an absolute-form target). */
  readonly host: string;
  /** The path the relay is mounted at, `''` when none. */
  readonly mountPath: string;
  /** The request target exactly as the client sent it. */
  readonly originalUrl: string;
  /** The port the client connected to (the relay's side of the connection), 0 when unknown. */
  readonly port: number;
  /** The node:http request, for stages that need more. Its body is `ProxyRequest.body`. */
  readonly incoming: IncomingMessage | null;

  private controller: AbortController | null = null;
  private reason: RelayError | null = null;
  private abortHandler: AbortHandler | null = null;
  private answerHandler: AnswerHandler | null = null;
  private errorsToApp = false;
  /** Where informational answers go: the client's response, until its head is written. */
  private hintsTarget: EarlyHintsTarget | null = null;
  /**
   * `null`: no trusted proxy's word, `clientAddress` is `address`; a chain: the trusted peer's
   * `X-Forwarded-For`, walked on first read; then the walk's result.
   */
  private forwarded: ForwardedChain | string | null = null;

  constructor(facts: ClientFacts, incoming: IncomingMessage | null = null) {
    this.address = facts.address;
    this.scheme = facts.scheme;
    this.host = facts.host;
    this.mountPath = facts.mountPath;
    this.originalUrl = facts.originalUrl;
    this.port = facts.port ?? 0;
    this.incoming = incoming;
  }

  /**
   * The client's IP address as the relay's `trustProxy` resolves it: when the peer (`address`) is a
   * trusted proxy, its `X-Forwarded-For` read from the right, past every address `trustProxy` trusts,
   * to the first it does not (the leftmost when all are trusted; an element that is not an IP address
   * ends the walk at the last address accepted before it); else `address`. What nginx's realip
   * (`real_ip_recursive on`) and Express's `req.ip` give. IPv6 in canonical form, IPv4-mapped as
   * IPv4. Worked out on first read, once per request.
   *
   * @example
   * // createRelay({ trustProxy: ['10.0.0.0/8'] }), peer 10.0.0.2, `X-Forwarded-For: 203.0.113.7, 10.0.0.9`:
   * request.client.address;       // '10.0.0.2', the load balancer
   * request.client.clientAddress; // '203.0.113.7'
   */
  get clientAddress(): string {
    const forwarded = this.forwarded;
    if (forwarded === null) return this.address;
    if (typeof forwarded === 'string') return forwarded;
    const resolved = resolveClientAddress(forwarded.trust, this.address, forwarded.forwardedFor);
    this.forwarded = resolved;
    return resolved;
  }

  /**
   * @internal Set by `buildRequest` when the peer is a trusted proxy that sent `X-Forwarded-For`
   * (`forwardedFor`, as the relay kept it): `clientAddress` walks it with `trust`.
   */
  setForwardedFor(forwardedFor: string | readonly string[], trust: boolean | BlockList): void {
    this.forwarded = { trust, forwardedFor: typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(', ') };
  }

  /** True once the client has gone away (or the relay aborted the request on shutdown). */
  get aborted(): boolean {
    return this.reason !== null;
  }

  /** Why the request was aborted, or `null`. */
  get abortReason(): RelayError | null {
    return this.reason;
  }

  /** Fires when the client goes away; made on first use. */
  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.reason !== null) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /**
   * Sets the one handler told when the client goes away (a transport's current attempt), or
   * clears it with `null`. Called at once when the client is already gone, or when the handler's
   * attempt was cut already (its `request.bound`: it reached its transport after the cut, still
   * held in an inner stage meanwhile): such an attempt is never sent, nor registered.
   */
  setAbortHandler(handler: AbortHandler | null): void {
    if (handler !== null && this.reason === null) {
      const cut = handler.request.bound?.reason;
      if (cut != null) {
        handler.onClientAbort(cut);
        return;
      }
    }
    this.abortHandler = handler;
    if (handler !== null && this.reason !== null) handler.onClientAbort(this.reason);
  }

  /**
   * @internal `AttemptBound.cut`: stops the registered attempt when it is one of `bound`'s, leaving
   * the client as it is (`aborted` stays false, `signal` does not fire). Whether one was stopped.
   */
  cutRegisteredAttempt(bound: AttemptBound, reason: RelayError): boolean {
    const handler = this.abortHandler;
    if (handler === null || this.reason !== null || !bound.covers(handler.request.bound)) return false;
    this.abortHandler = null;
    handler.onClientAbort(reason);
    return true;
  }

  /**
   * True when an error before the response head goes to the app (`relay.dispatch`'s `onError`,
   * `toConnect({ errors: 'next' })`), which answers the client itself: a stage that reports what
   * the client got (an access log) learns it through `setAnswerHandler`, not from the error.
   */
  get appAnswersErrors(): boolean {
    return this.errorsToApp;
  }

  /** @internal Set by the front when the request came through `relay.dispatch` with an `onError`. */
  setAppAnswersErrors(): void {
    this.errorsToApp = true;
  }

  /** Sets the one handler told, once, what the client was answered when its response is over (or clears it with `null`). */
  setAnswerHandler(handler: AnswerHandler | null): void {
    this.answerHandler = handler;
  }

  /** @internal Called by the front when the client's response is over. */
  answered(status: number, bodyBytes: number | null): void {
    const handler = this.answerHandler;
    if (handler === null) return;
    this.answerHandler = null;
    handler.onClientAnswered(status, bodyBytes);
  }

  /** @internal The exchange's response, which can still take a `103 Early Hints`. */
  setEarlyHintsTarget(target: EarlyHintsTarget | null): void {
    this.hintsTarget = target;
  }

  /**
   * Sends the upstream's `103 Early Hints` (its `Link` headers) on to the client, when the client's
   * response has not started; called by transports.
   */
  sendEarlyHints(headers: Readonly<Record<string, string | string[] | undefined>>): void {
    const target = this.hintsTarget;
    if (target === null || target.headersSent || headers.link === undefined) return;
    target.writeEarlyHints(headers as Record<string, string | string[]>);
  }

  /** Sends the upstream's `100 Continue` on to a client that waits for it (end-to-end `Expect`); called by transports. */
  sendContinue(): void {
    const target = this.hintsTarget;
    if (target !== null && !target.headersSent) target.writeContinue();
  }

  /** Marks the request aborted and tells the handler and the signal; later calls do nothing. */
  abort(reason: RelayError = new RelayError('ERR_CLIENT_ABORTED', 'client went away')): void {
    if (this.reason !== null) return;
    this.reason = reason;
    const handler = this.abortHandler;
    this.abortHandler = null;
    if (handler !== null) handler.onClientAbort(reason);
    if (this.controller !== null) this.controller.abort(reason);
  }
}
