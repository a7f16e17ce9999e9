import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { closeReasons } from './close-codes.js';
import type { WebSocketCounts } from './counts.js';
import { FrameTracker, closeFrame } from './frames.js';
import type { RelayedSession } from './host.js';
import { logSessionEnd, type SessionEnding, type SessionLog } from './session.js';
import type { SessionHost } from './host.js';
import { timerDelay } from './timers.js';
import { Backlog, BacklogWatch } from './write-progress.js';

const kPipe = Symbol('relay.ws.pipe');
type Tagged = Duplex & { [kPipe]?: Pipe };

/**
 * One direction of a transparent session: the bytes of one side written to the other as they
 * come, with backpressure, while a `FrameTracker` follows the frame boundaries. The relay may end
 * the direction with a close frame of its own, written between two frames, after which nothing
 * more from this side is passed on.
 */
class Pipe {
  readonly tracker = new FrameTracker();
  /** Set when the relay wants to write its close frame at the next boundary. */
  pendingClose: Buffer | null = null;
  /** No more bytes are passed on: the relay wrote its own close frame, or `to` is gone. */
  stopped = false;
  /** `from` has ended (FIN or closed). */
  ended = false;
  /** Close `to`'s connection once the pending close frame is written (the relay is the client's server). */
  endAfterClose = false;
  /** A close frame (the sender's or the relay's) is queued towards `to`, behind data not written out yet. */
  private closeQueued = false;
  /** While `closeQueued`: `to`'s backlog at the last check, and when `to` was last seen taking some of it. */
  private readonly closeWatch = new BacklogWatch();
  private progressAt = 0;
  /** `to`'s backlog at the last idle check. */
  private readonly idleWatch = new BacklogWatch();
  /** The write callback of the chunk carrying the close frame, made once the pipe carries one. */
  private closeWritten: ((error?: Error | null) => void) | null = null;

  constructor(
    readonly session: RawSession,
    readonly from: Tagged,
    readonly to: Duplex,
    readonly fromUpstream: boolean,
  ) {
    from[kPipe] = this;
  }

  /** Passes a chunk on, or as much of it as ends at the frame boundary the relay waits for. */
  onData(chunk: Buffer): void {
    this.session.lastActive = Date.now();
    if (this.stopped) return;
    if (this.pendingClose !== null) {
      const end = this.tracker.atBoundary ? 0 : this.tracker.scan(chunk, 0, true);
      if (end > 0) this.send(end === chunk.length ? chunk : chunk.subarray(0, end), undefined);
      if (this.tracker.atBoundary) this.writeClose();
      return;
    }
    const tracker = this.tracker;
    const closeSeen = tracker.closeCode;
    tracker.scan(chunk, 0, false);
    if (closeSeen !== 0 || tracker.closeCode === 0) {
      this.send(chunk, undefined);
      return;
    }
    // The side's close frame: the other side owes its answer only once this chunk has been written to it.
    this.send(chunk, this.closeQueuedCallback());
    this.watchClose();
    this.session.closeSeen(this);
  }

  private send(chunk: Buffer, written: ((error?: Error | null) => void) | undefined): void {
    if (!this.to.write(chunk, written) && this.to.writableLength >= this.session.highWaterMark) {
      // Resumed by the receiver's 'drain': what the relay holds stays near highWaterMark.
      this.from.pause();
    }
  }

  /** Asks for the relay's close frame on this direction: now if between frames, else after the current one. */
  close(code: number, reason: string): void {
    // After the sender's own close frame, a second one would break the protocol: the first says it all.
    if (this.stopped || this.pendingClose !== null || this.tracker.closeCode !== 0) return;
    this.pendingClose = closeFrame(code, reason, !this.fromUpstream);
    if (this.tracker.atBoundary) this.writeClose();
    // Mid-frame: the rest of the frame is still passed on, so the sender must be read.
    else this.from.resume();
  }

  private writeClose(): void {
    const frame = this.pendingClose!;
    this.pendingClose = null;
    this.stopped = true;
    if (this.to.writable) {
      this.to.write(frame, this.closeQueuedCallback());
      this.watchClose();
    }
    if (this.endAfterClose) endSoon(this.to);
    this.session.relayClosed();
  }

  /**
   * Marks a close frame as queued towards `to`. Returns the callback of the write carrying it: once
   * that is written, closeTimeout starts for `to` to answer it. Made once, at the pipe's first close.
   */
  private closeQueuedCallback(): (error?: Error | null) => void {
    this.closeQueued = true;
    this.closeWritten ??= (error) => {
      this.closeQueued = false;
      // An error: `to` is gone, and its 'close' ends the session.
      if (error == null) this.session.closeFrameWritten();
    };
    return this.closeWritten;
  }

  /**
   * How long `to` may still take before the close frame queued for it is written, in ms (0 or less:
   * it is late, or nothing is queued). A side still taking that data is a slow reader, not a peer
   * that fails to answer: like any stalled side it is late after `stallTimeout` without progress.
   */
  closeWait(now: number, stallTimeout: number): number {
    if (!this.closeQueued) return 0;
    if (this.closeWatch.check(this.to.writableLength, this.to) === Backlog.Took) this.progressAt = now;
    return this.progressAt + stallTimeout - now;
  }

  /** Starts watching `to` take what is queued before the close frame just written. */
  private watchClose(): void {
    this.closeWatch.check(this.to.writableLength, this.to);
    this.progressAt = Date.now();
  }

  /**
   * Whether `to`'s backlog changed since the last idle check: some of it taken (write progress, seen
   * inside a write too, as the kernel takes part of it) or more queued (the relay read `from`).
   * Either way the session was not silent.
   */
  queueMovedSinceIdleCheck(): boolean {
    return this.idleWatch.check(this.to.writableLength, this.to) !== Backlog.Still;
  }
}

/**
 * A transparent WebSocket session: after the handshake the client's and the upstream's sockets
 * are joined byte for byte (extensions such as permessage-deflate were negotiated end to end, so
 * nothing needs decoding), with backpressure both ways. Frame boundaries are followed only to
 * close cleanly: 1011 to the client when the upstream is lost, 1001 to the upstream when the
 * client is lost, 1001 on shutdown and on the idle timeout.
 */
export class RawSession implements RelayedSession, SessionLog, WebSocketCounts {
  readonly started = Date.now();
  lastActive = this.started;
  idleTimer: NodeJS.Timeout | null = null;
  closeTimer: NodeJS.Timeout | null = null;
  /** Once closing: when the peers must be done (closeTimeout after the last close frame was written). */
  private closeDeadline = 0;
  ending: SessionEnding | null = null;
  readonly highWaterMark: number;
  /** How long a side with a close frame queued behind data may take nothing before it is cut (see `Pipe.closeWait`). */
  private readonly stallTimeout: number;
  private readonly toUpstream: Pipe;
  private readonly toClient: Pipe;
  private closedSockets = 0;
  private finished = false;

  constructor(
    readonly binding: SessionHost,
    readonly client: Duplex,
    clientHead: Buffer,
    readonly upstream: Socket,
    upstreamHead: Buffer,
    readonly path: string,
  ) {
    this.highWaterMark = Math.max(binding.settings.highWaterMark, 1);
    // The liveness rule of a session; without one, the close's own bound.
    this.stallTimeout = binding.settings.idleTimeout > 0 ? binding.settings.idleTimeout : binding.settings.closeTimeout;
    this.toUpstream = new Pipe(this, client, upstream, false);
    this.toClient = new Pipe(this, upstream, client, true);
    binding.sessions.add(this);
    for (const socket of [client, upstream] as Tagged[]) {
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.on('drain', onDrain);
    }
    if ('setNoDelay' in client) (client as Socket).setNoDelay(true);
    upstream.setNoDelay(true);
    if (upstreamHead.length > 0) this.toClient.onData(upstreamHead);
    if (clientHead.length > 0) this.toUpstream.onData(clientHead);
    client.resume();
    upstream.resume();
    const idleTimeout = binding.settings.idleTimeout;
    if (idleTimeout > 0) this.idleTimer = setTimeout(onIdleCheck, timerDelay(idleTimeout), this);
  }

  /** Counted by the frame trackers, which read every frame header anyway. */
  get clientMessages(): number {
    return this.toUpstream.tracker.messages;
  }

  get upstreamMessages(): number {
    return this.toClient.tracker.messages;
  }

  get clientCode(): number {
    return this.toUpstream.tracker.closeCode || 1006;
  }

  get upstreamCode(): number {
    return this.toClient.tracker.closeCode || 1006;
  }

  /** The pipe whose sender is `socket`. */
  private pipeFrom(socket: Duplex): Pipe {
    return socket === this.client ? this.toUpstream : this.toClient;
  }

  /** The first close frame of a side passed: the side that closes first names the session's end. */
  closeSeen(pipe: Pipe): void {
    this.ending ??= { kind: 'close', fromUpstream: pipe.fromUpstream, code: pipe.tracker.closeCode };
    // The other side has closeTimeout to answer it and both to go, as in terminating mode.
    this.armCloseTimer();
  }

  /** A side sent FIN: after its own close frame that is the end of the session; before it, the side was lost. */
  onEnd(socket: Duplex): void {
    const pipe = this.pipeFrom(socket);
    pipe.ended = true;
    if (pipe.tracker.closeCode !== 0 || pipe.stopped) {
      this.ending ??= { kind: 'close', fromUpstream: pipe.fromUpstream, code: pipe.tracker.closeCode };
      endSoon(pipe.to);
    } else {
      this.lost(pipe, null);
    }
    this.armCloseTimer();
  }

  onError(socket: Duplex, error: Error): void {
    const pipe = this.pipeFrom(socket);
    if (pipe.tracker.closeCode !== 0 && pipe.ended) return;
    this.lost(pipe, error);
  }

  onClose(socket: Duplex): void {
    const pipe = this.pipeFrom(socket);
    if (!pipe.ended) {
      pipe.ended = true;
      if (pipe.tracker.closeCode === 0 && !pipe.stopped) this.lost(pipe, null);
      else endSoon(pipe.to);
    }
    // Nothing can be written to a closed side any more.
    this.pipeFrom(pipe.to).stopped = true;
    if (++this.closedSockets === 2) this.finish();
    else this.armCloseTimer();
  }

  onDrain(socket: Duplex): void {
    // `socket` took everything queued for it: a slow reader still receiving is not idle.
    this.lastActive = Date.now();
    // `socket` can take more: read again from the side writing to it.
    const writer = socket === this.client ? this.toClient : this.toUpstream;
    if (!writer.ended) writer.from.resume();
  }

  /** One side went away without a close frame: the other is told with 1011 (upstream lost) or 1001 (client lost). */
  private lost(pipe: Pipe, error: Error | null): void {
    if (this.ending === null) {
      this.ending = error === null ? { kind: 'lost', fromUpstream: pipe.fromUpstream } : { kind: 'error', fromUpstream: pipe.fromUpstream, code: 0, error };
    }
    pipe.ended = true;
    // Nothing reaches the lost side any more.
    this.pipeFrom(pipe.to).stopped = true;
    if (pipe.stopped) {
      endSoon(pipe.to);
    } else if (pipe.pendingClose === null && pipe.tracker.atBoundary && pipe.to.writable) {
      pipe.close(pipe.fromUpstream ? 1011 : 1001, pipe.fromUpstream ? closeReasons.upstreamLost : closeReasons.clientLost);
      endSoon(pipe.to);
    } else {
      // Lost mid-frame: that frame can never be completed, so the far side sees the connection drop.
      pipe.to.destroy();
    }
    this.armCloseTimer();
  }

  /** The relay queued a close frame of its own: a peer that never closes its connection is destroyed after closeTimeout. */
  relayClosed(): void {
    this.armCloseTimer();
  }

  /**
   * A close frame was written to the side that must answer it: closeTimeout counts from here, not
   * from when the frame was queued behind data a slow reader was still taking (nginx re-arms its
   * send_timeout on each write that makes progress).
   */
  closeFrameWritten(): void {
    if (this.finished) return;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    const closeTimeout = this.binding.settings.closeTimeout;
    this.closeDeadline = Date.now() + closeTimeout;
    this.closeTimer = setTimeout(onCloseTimeout, closeTimeout, this);
  }

  /** Destroys both connections once the deadline has passed and no side is still taking data queued before a close frame. */
  onCloseTimeout(): void {
    this.closeTimer = null;
    const now = Date.now();
    // Both pipes are asked: each records its queue for the next check.
    const toClient = this.toClient.closeWait(now, this.stallTimeout);
    const toUpstream = this.toUpstream.closeWait(now, this.stallTimeout);
    const wait = Math.max(toClient, toUpstream, this.closeDeadline - now);
    if (wait > 0) this.closeTimer = setTimeout(onCloseTimeout, timerDelay(wait), this);
    else this.terminate();
  }

  onIdleCheck(): void {
    const idleTimeout = this.binding.settings.idleTimeout;
    // Both pipes are asked: each records its queue for the next check.
    const toClient = this.toClient.queueMovedSinceIdleCheck();
    const toUpstream = this.toUpstream.queueMovedSinceIdleCheck();
    // A side taking what the relay queued for it (a slow reader of a big message) is active (envoyproxy/envoy#34035).
    if (toClient || toUpstream) this.lastActive = Date.now();
    const idle = Date.now() - this.lastActive;
    if (idle < idleTimeout) {
      this.idleTimer = setTimeout(onIdleCheck, timerDelay(idleTimeout - idle), this);
      return;
    }
    this.idleTimer = null;
    this.closeBoth({ kind: 'idle' }, 1001, closeReasons.idle);
  }

  shutdown(): void {
    this.closeBoth({ kind: 'shutdown' }, 1001, closeReasons.shutdown);
  }

  terminate(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private closeBoth(ending: SessionEnding, code: number, reason: string): void {
    this.ending ??= ending;
    this.toClient.close(code, reason);
    this.toUpstream.close(code, reason);
    // The relay is the client's server: it closes the TCP connection after its close frame, which,
    // when the upstream is mid-frame, waits for that frame's end (closeTimeout bounds the wait).
    if (this.toClient.pendingClose === null) endSoon(this.client);
    else this.toClient.endAfterClose = true;
    this.armCloseTimer();
  }

  /** A peer that never closes its connection after a close is destroyed after closeTimeout. */
  private armCloseTimer(): void {
    if (this.closeTimer !== null || this.finished) return;
    const closeTimeout = this.binding.settings.closeTimeout;
    this.closeDeadline = Date.now() + closeTimeout;
    this.closeTimer = setTimeout(onCloseTimeout, closeTimeout, this);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.idleTimer = null;
    this.closeTimer = null;
    this.binding.sessionEnded(this);
    logSessionEnd(this, this.binding.config);
  }
}

/** Ends a socket once what was written to it has left; one already ending is left alone. */
function endSoon(socket: Duplex): void {
  if (socket.writable && !socket.writableEnded) socket.end();
}

function onData(this: Tagged, chunk: Buffer): void {
  this[kPipe]?.onData(chunk);
}

function onEnd(this: Tagged): void {
  this[kPipe]?.session.onEnd(this);
}

function onError(this: Tagged, error: Error): void {
  this[kPipe]?.session.onError(this, error);
}

function onClose(this: Tagged): void {
  this[kPipe]?.session.onClose(this);
}

function onDrain(this: Tagged): void {
  this[kPipe]?.session.onDrain(this);
}

function onIdleCheck(session: RawSession): void {
  session.onIdleCheck();
}

function onCloseTimeout(session: RawSession): void {
  session.onCloseTimeout();
}
