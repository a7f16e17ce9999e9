import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { loggedPath } from '@relay/core/transport';
import type { WebSocketCounts } from './counts.js';
import { closeCodeOfError, closeReasons, reasonOfErrorCode, relayedCloseCode } from './close-codes.js';
import { closeOpen } from './close-codes.js';
import { OwedClose } from './owed-close.js';
import { LimitState, sizeLimitIsPolicy, type Policy } from './policy.js';
import type { TransportConfig } from '@relay/core/transport';
import type { RelayedSession, SessionHost } from './host.js';
import { timerDelay } from './timers.js';
import { Backlog, BacklogWatch } from './write-progress.js';

/** A message the upstream sent before the client was accepted. */
export interface PendingMessage {
  data: Buffer;
  isBinary: boolean;
}

/** How one side ended: its close code and reason, or the error that ended it. */
export interface UpstreamEnd {
  code: number;
  reason: Buffer;
  error: Error | null;
}

/** What ended a session first: it decides the log line. */
export type SessionEnding =
  | { kind: 'close'; fromUpstream: boolean; code: number }
  | { kind: 'lost'; fromUpstream: boolean }
  | { kind: 'error'; fromUpstream: boolean; code: number; error: Error }
  | { kind: 'policy'; code: number; reason: string }
  | { kind: 'idle' }
  | { kind: 'shutdown' };

/** The connections under a terminating session's WebSockets (the upstream's: `null` if never seen). */
export interface SessionSockets {
  upstream: Duplex | null;
  client: Duplex | null;
}

/** What the session's log line is made of. */
export interface SessionLog {
  readonly path: string;
  readonly started: number;
  readonly clientCode: number;
  readonly upstreamCode: number;
  readonly ending: SessionEnding | null;
}

const kSession = Symbol('relay.ws.session');
type Tagged = WebSocket & { [kSession]?: Session };

const textFrame = { binary: false } as const;
const binaryFrame = { binary: true } as const;

/**
 * One relayed WebSocket session: messages, pings and pongs both ways (text stays text, binary
 * stays binary), each side's close passed to the other, backpressure, the idle timeout and one
 * log line when it ends.
 */
export class Session implements RelayedSession, SessionLog, WebSocketCounts {
  readonly started = Date.now();
  lastActive = this.started;
  idleTimer: NodeJS.Timeout | null = null;
  deadlineTimer: NodeJS.Timeout | null = null;
  ending: SessionEnding | null = null;
  readonly policy: Policy | null;
  private readonly clientLimit: LimitState | null = null;
  private readonly upstreamLimit: LimitState | null = null;
  private readonly sessionLimit: LimitState | null = null;
  clientCode = 0;
  upstreamCode = 0;
  clientMessages = 0;
  upstreamMessages = 0;
  readonly highWaterMark: number;
  /** A close waiting for the side's queue to be written out first (see `closeSide`). */
  private clientClose: OwedClose | null = null;
  private upstreamClose: OwedClose | null = null;
  /** Each side's backlog at the last idle check: one that moved means the session was not silent. */
  private readonly clientIdleWatch = new BacklogWatch();
  private readonly upstreamIdleWatch = new BacklogWatch();
  /**
   * Every send to a side carries one of these (made once per session): `written` sends an owed close
   * once the side's queue is empty; `flushed` also resumes reading from the other side.
   */
  private readonly clientWritten: (error?: Error) => void;
  private readonly upstreamWritten: (error?: Error) => void;
  private readonly clientFlushed: (error?: Error) => void;
  private readonly upstreamFlushed: (error?: Error) => void;

  constructor(
    readonly binding: SessionHost,
    readonly upstream: Tagged,
    readonly client: Tagged,
    readonly sockets: SessionSockets,
    readonly path: string,
    pending: readonly PendingMessage[],
    upstreamEnd: UpstreamEnd | null,
    /** When the policy's `deadline` ends the session, in ms since the epoch. */
    readonly deadline: number | null,
  ) {
    const policy = binding.settings.policy;
    this.policy = policy;
    if (policy !== null) {
      if (policy.client !== null) this.clientLimit = new LimitState(policy.client);
      if (policy.upstream !== null) this.upstreamLimit = new LimitState(policy.upstream);
      if (policy.session !== null) this.sessionLimit = new LimitState(policy.session);
    }
    const highWaterMark = binding.settings.highWaterMark;
    this.highWaterMark = highWaterMark;
    this.clientWritten = () => {
      if (this.clientClose?.written() === true) this.clientClose = null;
    };
    this.upstreamWritten = () => {
      if (this.upstreamClose?.written() === true) this.upstreamClose = null;
    };
    this.clientFlushed = () => {
      if (client.bufferedAmount <= highWaterMark) upstream.resume();
      this.clientWritten();
    };
    this.upstreamFlushed = () => {
      if (upstream.bufferedAmount <= highWaterMark) client.resume();
      this.upstreamWritten();
    };
    binding.sessions.add(this);
    for (const ws of [upstream, client]) {
      ws[kSession] = this;
      ws.on('message', onMessage);
      ws.on('ping', onPing);
      ws.on('pong', onPong);
      ws.on('error', onError);
      ws.on('close', onClose);
    }
    deferProtocolErrors(client, this);
    explainOversizeCloses(upstream);
    for (const message of pending) this.forward(upstream, message.data, message.isBinary);
    if (upstreamEnd !== null) {
      if (upstreamEnd.error !== null) this.onError(upstream, upstreamEnd.error);
      else if (upstream.readyState === WebSocket.CLOSED) this.onClose(upstream, upstreamEnd.code, upstreamEnd.reason);
      // Still closing: its 'close' event comes to this session.
    } else if (client.bufferedAmount <= highWaterMark) {
      upstream.resume();
    }
    const idleTimeout = binding.settings.idleTimeout;
    if (idleTimeout > 0) this.idleTimer = setTimeout(onIdleCheck, timerDelay(idleTimeout), this);
    if (deadline !== null) this.armDeadline(deadline);
  }

  /** A deadline further away than a node timer reaches (30 days) is reached through several timers, each checking the clock. */
  private armDeadline(deadline: number): void {
    this.deadlineTimer = setTimeout(onDeadline, timerDelay(Math.max(0, deadline - Date.now())), this);
  }

  /** Applies the policy to a message: limits first, then the direction's hook. Returns false when the message is not sent. */
  private admit(from: WebSocket, message: { data: Buffer; isBinary: boolean }): boolean {
    const policy = this.policy!;
    const fromClient = from === this.client;
    // Sizes were checked by `ws` (the side's maxPayload) before the message was read; rates are counted here.
    const breach = (fromClient ? this.clientLimit : this.upstreamLimit)?.take() ?? this.sessionLimit?.take() ?? null;
    if (breach !== null) {
      this.closeWith(breach.code, breach.reason);
      return false;
    }
    const hook = fromClient ? policy.onClientMessage : policy.onUpstreamMessage;
    if (hook === null) return true;
    let verdict;
    try {
      verdict = hook(message, { from: fromClient ? 'client' : 'upstream', path: this.path });
    } catch (error) {
      this.binding.config.logger.error({ path: this.path, error: (error as Error).message }, 'websocket message hook threw');
      this.closeWith(1011, closeReasons[1011]);
      return false;
    }
    if (verdict === undefined) return true;
    if (verdict === 'drop') return false;
    if ('close' in verdict) {
      this.closeWith(1008, String(verdict.close));
      return false;
    }
    message.data = typeof verdict.data === 'string' ? Buffer.from(verdict.data) : verdict.data;
    if (verdict.isBinary !== undefined) message.isBinary = verdict.isBinary;
    else if (typeof verdict.data === 'string') message.isBinary = false;
    return true;
  }

  /** Closes both sides with a code the relay chose by its policy (1008, 1009) or after a hook failed (1011). */
  closeWith(code: number, reason: string): void {
    this.ending ??= { kind: 'policy', code, reason };
    this.closeSide(this.client, code, reason);
    this.closeSide(this.upstream, code, reason);
  }

  /**
   * Closes one side, after what was queued for it before the close: directly, the peer's close
   * frame would arrive after that data too, and closeTimeout is the time to answer a close frame
   * that arrived, not to read everything before it.
   */
  private closeSide(side: WebSocket, code: number, reason: string | Buffer): void {
    if (this.closing(side)) return;
    if (side.readyState !== WebSocket.OPEN || side.bufferedAmount === 0) {
      closeOpen(side, code, reason);
      return;
    }
    // Read on: the side may close on its own meanwhile (what else it sends has nowhere to go).
    side.resume();
    const settings = this.binding.settings;
    // The liveness rule of a session; without one, the close's own bound.
    const socket = side === this.client ? this.sockets.client : this.sockets.upstream;
    const owed = new OwedClose(side, socket, code, reason, settings.idleTimeout > 0 ? settings.idleTimeout : settings.closeTimeout);
    if (side === this.client) this.clientClose = owed;
    else this.upstreamClose = owed;
  }

  /** Whether the relay owes `side` a close: nothing more is sent to it. */
  private closing(side: WebSocket): boolean {
    return (side === this.client ? this.clientClose : this.upstreamClose) !== null;
  }

  onDeadline(): void {
    this.deadlineTimer = null;
    // A timer cut to node's limit fired: the deadline (a wall-clock time, a token's expiry) is still ahead.
    if (Date.now() < this.deadline!) {
      this.armDeadline(this.deadline!);
      return;
    }
    this.closeWith(1008, closeReasons.expired);
  }

  /** Sends a message from one side to the other; pauses the sender while the receiver's queue is full. */
  forward(from: WebSocket, data: Buffer, isBinary: boolean): void {
    if (this.idleTimer !== null) this.lastActive = Date.now();
    const to = from === this.client ? this.upstream : this.client;
    if (to.readyState !== WebSocket.OPEN || this.closing(to)) return;
    if (this.policy !== null) {
      const message = { data, isBinary };
      if (!this.admit(from, message)) return;
      data = message.data;
      isBinary = message.isBinary;
    }
    if (to === this.upstream) this.clientMessages++;
    else this.upstreamMessages++;
    const options = isBinary ? binaryFrame : textFrame;
    const toClient = to === this.client;
    if (to.bufferedAmount + data.length <= this.highWaterMark) {
      to.send(data, options, toClient ? this.clientWritten : this.upstreamWritten);
      return;
    }
    // Stop reading from the sender until this message has left: memory stays bounded by the
    // high-water mark plus one message, however slow the receiver is.
    from.pause();
    to.send(data, options, toClient ? this.clientFlushed : this.upstreamFlushed);
  }

  onPing(from: WebSocket, data: Buffer): void {
    this.forwardControl(from, data, true);
  }

  onPong(from: WebSocket, data: Buffer): void {
    this.forwardControl(from, data, false);
  }

  /**
   * Sends a ping or pong from one side to the other under the same bound as messages: a flood of
   * control frames towards a side that stopped reading pauses the sender like any message would.
   */
  private forwardControl(from: WebSocket, data: Buffer, ping: boolean): void {
    if (this.idleTimer !== null) this.lastActive = Date.now();
    const to = from === this.client ? this.upstream : this.client;
    if (to.readyState !== WebSocket.OPEN || this.closing(to)) return;
    const toClient = to === this.client;
    let flushed = toClient ? this.clientWritten : this.upstreamWritten;
    if (to.bufferedAmount + data.length > this.highWaterMark) {
      from.pause();
      flushed = toClient ? this.clientFlushed : this.upstreamFlushed;
    }
    if (ping) to.ping(data, undefined, flushed);
    else to.pong(data, undefined, flushed);
  }

  onClose(side: WebSocket, code: number, reason: Buffer): void {
    const fromUpstream = side === this.upstream;
    if (fromUpstream) this.upstreamCode = code;
    else this.clientCode = code;
    this.ending ??= { kind: 'close', fromUpstream, code };
    this.cancelOwedClose(side);
    const other = fromUpstream ? this.client : this.upstream;
    const relayed = relayedCloseCode(code, fromUpstream);
    let relayedReason: string | Buffer = reason;
    if (relayed !== code) relayedReason = code === 1005 ? '' : fromUpstream ? closeReasons.upstreamLost : closeReasons.clientLost;
    this.closeSide(other, relayed, relayedReason);
    if (other.readyState === WebSocket.CLOSED) this.finish();
  }

  onError(side: WebSocket, error: Error): void {
    // `ws` has already closed `side` with the code that says what was wrong; the other side
    // gets the same code, since the relay received what broke the session.
    const fromUpstream = side === this.upstream;
    const code = closeCodeOfError(error);
    this.ending ??= this.errorEnding(fromUpstream, code, error);
    this.closeSide(fromUpstream ? this.client : this.upstream, code, reasonOfErrorCode(code));
  }

  /**
   * The client broke the protocol (a reserved bit or opcode, invalid UTF-8 …). A server would first
   * finish answering what came before, then close: so the upstream is closed first with the code,
   * and its answer (after whatever it was still sending) is what closes the client. The client is
   * no longer read from: `ws`'s receiver stops at the error.
   */
  onClientProtocolError(error: Error): void {
    const code = closeCodeOfError(error);
    this.ending ??= this.errorEnding(false, code, error);
    if (this.upstream.readyState === WebSocket.OPEN) this.closeSide(this.upstream, code, reasonOfErrorCode(code));
    else this.closeSide(this.client, code, reasonOfErrorCode(code));
  }

  /**
   * What a side's error makes of the session's end. A message over a `limits` size (which `ws` cut as
   * that side's maxPayload, see `sideMaxPayload`) is the policy's close, logged as a rate breach is;
   * anything else, `maxPayload`'s own 1009 included, is an error.
   */
  private errorEnding(fromUpstream: boolean, code: number, error: Error): SessionEnding {
    if (code === 1009 && sizeLimitIsPolicy(this.binding.settings.maxPayload, this.policy, fromUpstream ? 'upstream' : 'client')) {
      return { kind: 'policy', code, reason: closeReasons[1009] };
    }
    return { kind: 'error', fromUpstream, code, error };
  }

  onIdleCheck(): void {
    const idleTimeout = this.binding.settings.idleTimeout;
    // A side taking what the relay queued for it (a slow reader of a big message) is active (envoyproxy/envoy#34035).
    if (this.queuesMovedSinceIdleCheck()) this.lastActive = Date.now();
    const idle = Date.now() - this.lastActive;
    if (idle < idleTimeout) {
      this.idleTimer = setTimeout(onIdleCheck, timerDelay(idleTimeout - idle), this);
      return;
    }
    this.idleTimer = null;
    this.closeBoth({ kind: 'idle' }, closeReasons.idle);
  }

  /**
   * Whether a side's backlog changed since the last idle check: some of it taken (write progress,
   * seen inside a big message too, as the kernel takes part of it) or more queued (the relay read
   * the other side). Either way the session was not silent.
   */
  private queuesMovedSinceIdleCheck(): boolean {
    // Both sides are checked: each records its backlog for the next check.
    const client = this.clientIdleWatch.check(this.client.bufferedAmount, this.sockets.client);
    const upstream = this.upstreamIdleWatch.check(this.upstream.bufferedAmount, this.sockets.upstream);
    return client !== Backlog.Still || upstream !== Backlog.Still;
  }

  /** Closes both sides with 1001 because the relay is shutting down. */
  shutdown(): void {
    this.closeBoth({ kind: 'shutdown' }, closeReasons.shutdown);
  }

  /** Destroys both connections at once: the last resort when a peer never answers a close. */
  terminate(): void {
    this.upstream.terminate();
    this.client.terminate();
  }

  private closeBoth(ending: SessionEnding, reason: string): void {
    this.ending ??= ending;
    this.closeSide(this.client, 1001, reason);
    this.closeSide(this.upstream, 1001, reason);
  }

  private cancelOwedClose(side: WebSocket): void {
    if (side === this.client) {
      this.clientClose?.cancel();
      this.clientClose = null;
    } else {
      this.upstreamClose?.cancel();
      this.upstreamClose = null;
    }
  }

  private finish(): void {
    this.cancelOwedClose(this.client);
    this.cancelOwedClose(this.upstream);
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.deadlineTimer !== null) {
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = null;
    }
    this.upstream[kSession] = undefined;
    this.client[kSession] = undefined;
    this.binding.sessionEnded(this);
    logSessionEnd(this, this.binding.config);
  }
}

/** The one log line of a session that ended, terminating or transparent. */
export function logSessionEnd(session: SessionLog, config: Pick<TransportConfig, 'logger' | 'logQuery'>): void {
  const logger = config.logger;
  const ending: SessionEnding = session.ending ?? { kind: 'lost', fromUpstream: true };
  const fields: Record<string, unknown> = {
    path: loggedPath(session.path, config),
    clientCode: session.clientCode,
    upstreamCode: session.upstreamCode,
    durationMs: Date.now() - session.started,
  };
  switch (ending.kind) {
    case 'error':
      fields.code = (ending.error as { code?: unknown }).code;
      fields.error = ending.error.message;
      logger.warn(fields, `websocket session failed: ${ending.fromUpstream ? 'upstream' : 'client'} error, closed with ${ending.code}`);
      return;
    case 'lost':
      logger.warn(fields, `websocket session failed: ${ending.fromUpstream ? closeReasons.upstreamLost : closeReasons.clientLost}`);
      return;
    case 'policy':
      fields.closeCode = ending.code;
      logger.info(fields, `websocket session closed by the relay's policy: ${ending.reason}`);
      return;
    case 'idle':
      logger.info(fields, 'websocket session closed: idle timeout');
      return;
    case 'shutdown':
      logger.debug(fields, 'websocket session closed: relay shutting down');
      return;
    case 'close':
      if (relayedCloseCode(ending.code, ending.fromUpstream) !== ending.code && ending.code !== 1005) {
        logger.warn(fields, `websocket session failed: ${ending.fromUpstream ? closeReasons.upstreamLost : closeReasons.clientLost}`);
        return;
      }
      logger.debug(fields, `websocket session closed by the ${ending.fromUpstream ? 'upstream' : 'client'}`);
  }
}

function onMessage(this: Tagged, data: Buffer, isBinary: boolean): void {
  this[kSession]?.forward(this, data, isBinary);
}

function onPing(this: Tagged, data: Buffer): void {
  this[kSession]?.onPing(this, data);
}

function onPong(this: Tagged, data: Buffer): void {
  this[kSession]?.onPong(this, data);
}

function onError(this: Tagged, error: Error): void {
  this[kSession]?.onError(this, error);
}

function onClose(this: Tagged, code: number, reason: Buffer): void {
  this[kSession]?.onClose(this, code, reason);
}

/** Receivers whose protocol errors a session handles itself (see `onClientProtocolError`). */
const kProtocolErrors = Symbol('relay.ws.protocolErrors');
/** The side whose over-size message a receiver reports (see `explainOversizeCloses`). */
const kOversizeSide = Symbol('relay.ws.oversizeSide');
type Receiver = EventEmitter & { [kProtocolErrors]?: Session; [kOversizeSide]?: WebSocket };

/**
 * Replaces `ws`'s handler of the client receiver's errors (which closes the client at once) with the
 * session's. `_receiver` is `ws`'s own; without it (another `ws` version) its handling stays.
 */
function deferProtocolErrors(client: WebSocket, session: Session): void {
  const receiver = (client as unknown as { _receiver?: Receiver })._receiver;
  if (receiver === undefined || receiver.listenerCount('error') !== 1) return;
  receiver.removeAllListeners('error');
  receiver[kProtocolErrors] = session;
  receiver.on('error', onReceiverError);
}

function onReceiverError(this: Receiver, error: Error): void {
  this[kProtocolErrors]?.onClientProtocolError(error);
}

/**
 * `ws` closes a side whose message is too big with a bare 1009; this closes it first with the reason
 * the other side gets too (`message too big`), so both hear why. `ws`'s own close that follows is
 * then a no-op. Without `_receiver` (another `ws` version) the bare 1009 stays.
 */
function explainOversizeCloses(side: WebSocket): void {
  const receiver = (side as unknown as { _receiver?: Receiver })._receiver;
  if (receiver === undefined) return;
  receiver[kOversizeSide] = side;
  receiver.prependListener('error', closeOversize);
}

function closeOversize(this: Receiver, error: Error): void {
  const side = this[kOversizeSide];
  if (side?.readyState === WebSocket.OPEN && closeCodeOfError(error) === 1009) side.close(1009, closeReasons[1009]);
}

function onIdleCheck(session: Session): void {
  session.onIdleCheck();
}

function onDeadline(session: Session): void {
  session.onDeadline();
}
