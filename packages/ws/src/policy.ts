import { assertKnownKeys, type ProxyRequest } from '@relay/core';
import { assertNonNegative } from '@relay/core/transport';

/** A whole message as one side sent it (fragments joined, decompressed). */
export interface WebSocketMessage {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** Where a message comes from, for a hook. */
export interface MessageContext {
  /** `client` (on its way to the upstream) or `upstream` (on its way to the client). */
  readonly from: 'client' | 'upstream';
  /** The upstream path of the session's handshake. */
  readonly path: string;
}

/**
 * What a hook decides for a message: nothing (`undefined`) passes it as it is; `'drop'` drops it;
 * `{ data, isBinary? }` sends that instead; `{ close: reason }` closes both sides with 1008 and
 * that reason (policy violation).
 */
export type MessageVerdict = undefined | void | 'drop' | { data: Buffer | string; isBinary?: boolean } | { close: string };

/** Inspects, rewrites, drops a message or closes the session. Runs synchronously, in message order. */
export type MessageHook = (message: WebSocketMessage, context: MessageContext) => MessageVerdict;

/** Limits on the messages of one direction, or of the whole session. */
export interface MessageLimits {
  /** Largest message, in bytes; a bigger one closes the session with 1009. */
  maxMessageBytes?: number;
  /** Sustained messages per second; going over closes the session with 1008. */
  messagesPerSecond?: number;
  /** Messages that may arrive at once above the sustained rate. Default: `messagesPerSecond`. */
  burst?: number;
}

/** The message-level policy: per-direction hooks, limits, and a deadline set at the handshake. */
export interface PolicyOptions {
  /** Runs on every message from the client before it is sent upstream. */
  onClientMessage?: MessageHook;
  /** Runs on every message from the upstream before it is sent to the client. */
  onUpstreamMessage?: MessageHook;
  /** Per-direction (`client`, `upstream`) and per-session (`session`, both directions together) limits. */
  limits?: { client?: MessageLimits; upstream?: MessageLimits; session?: MessageLimits };
  /**
   * Called once at the handshake: when the session must end (a `Date` or ms since the epoch, such as
   * an access token's expiry), or `null` for no deadline. At that time both sides get 1008 `session expired`. Any time
   * ahead works, weeks too (beyond node's timer limit of about 24.8 days).
   */
  deadline?: (request: ProxyRequest) => Date | number | null | undefined;
}

/** @internal A checked limit. */
export interface Limit {
  maxMessageBytes: number;
  messagesPerSecond: number;
  burst: number;
}

/** @internal The checked policy. */
export interface Policy {
  onClientMessage: MessageHook | null;
  onUpstreamMessage: MessageHook | null;
  client: Limit | null;
  upstream: Limit | null;
  session: Limit | null;
  deadline: PolicyOptions['deadline'] | null;
}

const limitNames: readonly string[] = ['maxMessageBytes', 'messagesPerSecond', 'burst'];
const limitGroups: readonly string[] = ['client', 'upstream', 'session'];

/** @internal Checks the policy options; `null` when none is set (the session is then transparent). */
export function resolvePolicy(options: PolicyOptions): Policy | null {
  const { onClientMessage, onUpstreamMessage, limits, deadline } = options;
  if (onClientMessage === undefined && onUpstreamMessage === undefined && limits === undefined && deadline === undefined) return null;
  for (const [name, hook] of [['onClientMessage', onClientMessage], ['onUpstreamMessage', onUpstreamMessage], ['deadline', deadline]] as const) {
    if (hook !== undefined && typeof hook !== 'function') throw new TypeError(`${name} must be a function`);
  }
  if (limits !== undefined && (limits === null || typeof limits !== 'object')) throw new TypeError('limits must be an object: { client, upstream, session }');
  if (limits !== undefined) assertKnownKeys(limits, limitGroups, 'websocket: limits');
  return {
    onClientMessage: onClientMessage ?? null,
    onUpstreamMessage: onUpstreamMessage ?? null,
    client: resolveLimit(limits?.client, 'limits.client'),
    upstream: resolveLimit(limits?.upstream, 'limits.upstream'),
    session: resolveLimit(limits?.session, 'limits.session'),
    deadline: deadline ?? null,
  };
}

function resolveLimit(value: MessageLimits | undefined, name: string): Limit | null {
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object') throw new TypeError(`${name} must be an object: { maxMessageBytes, messagesPerSecond, burst }`);
  assertKnownKeys(value, limitNames, `websocket: ${name}`);
  const limit: Limit = {
    maxMessageBytes: value.maxMessageBytes ?? 0,
    messagesPerSecond: value.messagesPerSecond ?? 0,
    burst: value.burst ?? value.messagesPerSecond ?? 0,
  };
  assertNonNegative(limit.maxMessageBytes, `${name}.maxMessageBytes`);
  // Given to `ws` as a side's maxPayload, where 0 means no limit: 0.5 must not round to that.
  if (!Number.isInteger(limit.maxMessageBytes)) throw new RangeError(`${name}.maxMessageBytes must be a whole number of bytes, got ${limit.maxMessageBytes}`);
  assertNonNegative(limit.messagesPerSecond, `${name}.messagesPerSecond`);
  assertNonNegative(limit.burst, `${name}.burst`);
  // A number of messages, as rateLimit()'s burst is (its default, messagesPerSecond, may be a fraction).
  if (value.burst !== undefined && !Number.isInteger(value.burst)) throw new RangeError(`${name}.burst must be a whole number of messages, got ${value.burst}`);
  if (limit.messagesPerSecond > 0 && limit.burst < 1) throw new RangeError(`${name}.burst must be at least 1, got ${limit.burst}`);
  return limit;
}

/**
 * @internal The largest message `ws` may read from one side: the smallest non-zero of `maxPayload`, the
 * direction's and the session's `maxMessageBytes` (0: no limit). Given to `ws` as that side's `maxPayload`,
 * so an over-size message is cut at its frame header (or as the inflater's output passes it), not read
 * and decompressed whole first.
 */
export function sideMaxPayload(maxPayload: number, policy: Policy | null, from: 'client' | 'upstream'): number {
  let smallest = maxPayload;
  for (const limit of [policy?.[from], policy?.session]) {
    const bytes = limit?.maxMessageBytes ?? 0;
    if (bytes > 0 && (smallest === 0 || bytes < smallest)) smallest = bytes;
  }
  // `ws` reads the option as a 32-bit integer (`maxPayload | 0`): a larger value would wrap, to no limit at all.
  return Math.min(Math.floor(smallest), maxWsPayload);
}

/** The largest `maxPayload` `ws` reads as it is (2^31 - 1). */
const maxWsPayload = 0x7fff_ffff;

/** @internal Whether `ws`'s size limit on a side's messages is the policy's `maxMessageBytes`, not `maxPayload`. */
export function sizeLimitIsPolicy(maxPayload: number, policy: Policy | null, from: 'client' | 'upstream'): boolean {
  const policyLimit = sideMaxPayload(0, policy, from);
  return policyLimit !== 0 && (maxPayload === 0 || policyLimit <= maxPayload);
}

/** Why a message broke a limit: the close code and reason both sides get. */
export interface LimitBreach {
  code: 1008;
  reason: string;
}

const tooFast: LimitBreach = { code: 1008, reason: 'message rate exceeded' };

/**
 * @internal One limit's rate state in one session: a token bucket. `maxMessageBytes` is not checked here:
 * `ws` enforces it as the side's `maxPayload` (see `sideMaxPayload`), before the message is read.
 */
export class LimitState {
  private tokens: number;
  private refilled = Date.now();

  constructor(readonly limit: Limit) {
    this.tokens = limit.burst;
  }

  /** Counts one message; returns the rate breach it makes, or `null`. */
  take(): LimitBreach | null {
    const limit = this.limit;
    if (limit.messagesPerSecond === 0) return null;
    const now = Date.now();
    this.tokens = Math.min(limit.burst, this.tokens + ((now - this.refilled) * limit.messagesPerSecond) / 1000);
    this.refilled = now;
    if (this.tokens < 1) return tooFast;
    this.tokens -= 1;
    return null;
  }
}

/** @internal The deadline of a session, in ms since the epoch, or `null`. Throws a `TypeError` for a bad value. */
export function sessionDeadline(policy: Policy, request: ProxyRequest): number | null {
  if (policy.deadline === null) return null;
  const value = policy.deadline!(request);
  if (value === null || value === undefined) return null;
  const at = value instanceof Date ? value.getTime() : value;
  if (typeof at !== 'number' || Number.isNaN(at)) throw new TypeError('deadline() must return a Date, a number of ms since the epoch, or null');
  return at;
}
