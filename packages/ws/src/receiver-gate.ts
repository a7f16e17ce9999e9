import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { FrameTracker } from './frames.js';
import { DEFLATE } from './ws-extensions.js';

const kGate = Symbol('relay.ws.receiverGate');
type Tagged<T> = T & { [kGate]?: ReceiverGate };
/** `ws`'s own `data` listener: it writes a chunk to the receiver and pauses the socket when the receiver is full. */
type FeedReceiver = (this: Duplex, chunk: Buffer) => void;

/**
 * Hands one side's `ws` receiver one message at a time on a permessage-deflate link, so that pausing
 * the side (backpressure) holds at the next message. Pausing a WebSocket pauses its socket, but
 * what the receiver already has it still inflates and emits: one read of small compressed frames
 * (40 frames of 2 KiB are 80 MiB inflated) would all reach the other side's queue. Here the socket's
 * bytes reach the receiver up to the end of a message; the rest waits, its socket paused, until that
 * message was emitted and the side is not paused. Frame boundaries come from a `FrameTracker`, so
 * nothing is decoded twice. After a close frame, at the socket's end or close, or once the receiver
 * failed, bytes go through as `ws` would take them.
 */
export class ReceiverGate {
  private readonly tracker = new FrameTracker();
  /** Bytes read from the socket and not yet given to the receiver, oldest first (not yet scanned). */
  private readonly held: Buffer[] = [];
  /** Messages whose last frame the receiver was given, and messages it emitted. */
  private given = 0;
  private delivered = 0;
  private releaseQueued = false;

  private constructor(
    readonly ws: WebSocket,
    readonly socket: Tagged<Duplex>,
    private readonly feedReceiver: FeedReceiver,
  ) {}

  /**
   * Puts a gate between `ws`'s socket and its receiver when the link negotiated permessage-deflate (an
   * uncompressed read holds no more than its own bytes). Call it right after `ws` took the socket, before
   * any data event. Without `ws`'s internals as expected (another `ws` version) the side is left as it is.
   */
  static install(ws: WebSocket): void {
    if (!ws.extensions.split(',').includes(DEFLATE)) return;
    const internals = ws as unknown as { _socket?: Tagged<Duplex>; _receiver?: Tagged<EventEmitter> };
    const socket = internals._socket;
    const receiver = internals._receiver;
    if (socket === undefined || receiver === undefined) return;
    const listeners = socket.listeners('data');
    const feedReceiver = listeners[0] as FeedReceiver | undefined;
    if (listeners.length !== 1 || feedReceiver?.name !== 'socketOnData') return;
    const gate = new ReceiverGate(ws, socket, feedReceiver);
    socket[kGate] = gate;
    (ws as Tagged<WebSocket>)[kGate] = gate;
    receiver[kGate] = gate;
    socket.removeListener('data', feedReceiver);
    socket.on('data', onGateData);
    socket.on('resume', onGateResume);
    // Before `ws`'s own listeners, which end the receiver: what is held must reach it first.
    socket.prependListener('end', onGateEnd);
    socket.prependListener('close', onGateEnd);
    ws.on('message', onGateMessage);
    receiver.on('error', onGateReceiverError);
  }

  /** Whether the receiver must not be given another message: one is still inflating, or the side is paused. */
  private blocked(): boolean {
    return this.given > this.delivered || this.ws.isPaused;
  }

  onData(chunk: Buffer): void {
    if (this.held.length > 0 || this.blocked()) {
      this.held.push(chunk);
      this.socket.pause();
      return;
    }
    this.feed(chunk);
  }

  /** Gives the receiver `chunk` up to the end of a message after which it is blocked; holds the rest. */
  private feed(chunk: Buffer): void {
    const tracker = this.tracker;
    let start = 0;
    let at = 0;
    while (at < chunk.length) {
      at = tracker.scan(chunk, at, true);
      if (tracker.closeCode !== 0) {
        // The receiver discards what follows a close frame: nothing more to hold back.
        this.feedReceiver.call(this.socket, start === 0 ? chunk : chunk.subarray(start));
        this.open();
        return;
      }
      if (!tracker.atBoundary || tracker.messages === this.given) continue;
      // `at` ends the last frame of a message.
      this.given = tracker.messages;
      this.feedReceiver.call(this.socket, chunk.subarray(start, at));
      start = at;
      if (at < chunk.length && this.blocked()) {
        this.held.unshift(chunk.subarray(at));
        this.socket.pause();
        return;
      }
    }
    if (start < chunk.length) this.feedReceiver.call(this.socket, start === 0 ? chunk : chunk.subarray(start));
  }

  /** Gives the receiver what is held, as far as it is not blocked; reading resumes once nothing is. */
  release(): void {
    this.releaseQueued = false;
    while (this.held.length > 0 && !this.blocked()) this.feed(this.held.shift()!);
    // `ws.resume()` leaves the socket paused while the receiver itself is full (it resumes it on drain).
    if (this.held.length === 0 && !this.ws.isPaused) this.ws.resume();
  }

  onMessage(): void {
    this.delivered++;
    // After the session's own listener, which may pause the side for this very message.
    if (this.held.length > 0 && !this.releaseQueued) {
      this.releaseQueued = true;
      process.nextTick(releaseGate, this);
    }
  }

  /** The socket ended or closed: what is held goes to the receiver before `ws` ends it, and the gate opens. */
  onEnd(): void {
    this.open();
  }

  /** The receiver failed: `ws` no longer reads the socket, and neither does the gate. */
  onReceiverError(): void {
    this.held.length = 0;
    this.detach();
  }

  /** Hands the socket back to `ws`'s own listener, with what is held first. */
  private open(): void {
    const held = this.held.splice(0);
    this.detach();
    this.socket.on('data', this.feedReceiver);
    for (const chunk of held) this.feedReceiver.call(this.socket, chunk);
  }

  private detach(): void {
    const socket = this.socket;
    socket.removeListener('data', onGateData);
    socket.removeListener('resume', onGateResume);
    socket.removeListener('end', onGateEnd);
    socket.removeListener('close', onGateEnd);
    this.ws.removeListener('message', onGateMessage);
    socket[kGate] = undefined;
  }
}

function releaseGate(gate: ReceiverGate): void {
  gate.release();
}

function onGateData(this: Tagged<Duplex>, chunk: Buffer): void {
  this[kGate]?.onData(chunk);
}

function onGateResume(this: Tagged<Duplex>): void {
  this[kGate]?.release();
}

function onGateEnd(this: Tagged<Duplex>): void {
  this[kGate]?.onEnd();
}

function onGateMessage(this: Tagged<WebSocket>): void {
  this[kGate]?.onMessage();
}

function onGateReceiverError(this: Tagged<EventEmitter>): void {
  this[kGate]?.onReceiverError();
}
