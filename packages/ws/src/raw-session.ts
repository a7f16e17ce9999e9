import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { closeReasons } from './close-codes.js';
import type { WebSocketCounts } from './counts.js';
import { FrameTracker, closeFrame } from './frames.js';
import type { RelayedSession } from './host.js';
import { logSessionEnd, type SessionEnding, type SessionLog } from './session.js';
import type { SessionHost } from './host.js';
import { timerDelay } from './timers.js';

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
      if (end > 0) this.send(end === chunk.length ? chunk : chunk.subarray(0, end));
      if (this.tracker.atBoundary) this.writeClose();
      return;
    }
    const tracker = this.tracker;
    const closeSeen = tracker.closeCode;
    tracker.scan(chunk, 0, false);
    if (closeSeen === 0 && tracker.closeCode !== 0) this.session.closeSeen(this);
    this.send(chunk);
  }

  private send(chunk: Buffer): void {
    if (!this.to.write(chunk) && this.to.writableLength >= this.session.highWaterMark) {
      // Resumed by the receiver's 'drain': what the relay holds stays near highWaterMark.
      this.from.pause();
    }
  }

  /** Asks for the relay's close frame on this direction: now if between frames, else after the current one. */
  close(code: number, reason: string): void {
    if (this.stopped || this.pendingClose !== null) return;
    this.pendingClose = closeFrame(code, reason, !this.fromUpstream);
    if (this.tracker.atBoundary) this.writeClose();
    // Mid-frame: the rest of the frame is still passed on, so the sender must be read.
    else this.from.resume();
  }

  private writeClose(): void {
    const frame = this.pendingClose!;
    this.pendingClose = null;
    this.stopped = true;
    if (this.to.writable) this.to.write(frame);
    if (this.endAfterClose) endSoon(this.to);
    this.session.relayClosed();
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
  ending: SessionEnding | null = null;
  readonly highWaterMark: number;
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

  /** The relay wrote a close frame of its own: a peer that never closes its connection is destroyed after closeTimeout. */
  relayClosed(): void {
    this.armCloseTimer();
  }

  onIdleCheck(): void {
    const idleTimeout = this.binding.settings.idleTimeout;
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
    this.closeTimer = setTimeout(onCloseTimeout, this.binding.settings.closeTimeout, this);
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
  session.closeTimer = null;
  session.terminate();
}
