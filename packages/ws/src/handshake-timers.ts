import { RelayError } from '@relay/core';
import { timerDelay } from './timers.js';

/** A handshake the timers fail; `fail` does nothing once the upstream has answered. */
export interface TimedHandshake {
  fail(error: RelayError): void;
}

/**
 * The two fixed deadlines of an upstream handshake, shared by both modes: `connect` for TCP and
 * TLS, then `read` for the upstream's answer, counted from when the request went out. A fixed
 * deadline, not the socket's silence timer: that one restarts on every byte, so an upstream that
 * trickles its head (a header line every 100 ms) would hold the handshake, the client and the
 * request in flight for good. Core's HTTP transports bound the final head the same way.
 */
export class HandshakeTimers {
  private connectTimer: NodeJS.Timeout | null = null;
  private answerTimer: NodeJS.Timeout | null = null;

  constructor(readonly handshake: TimedHandshake) {}

  /** The request is on its way: it must be connected within `connect` ms (0: no limit). */
  startConnect(connect: number): void {
    // The relay's own timeout option: core refuses one past node's timer limit; the cut guards a
    // TransportConfig built elsewhere, where a longer one would fire after 1 ms.
    if (connect > 0) this.connectTimer = setTimeout(onConnectTimeout, timerDelay(connect), this, connect);
  }

  /** Connected, so the request is sent: its answer's head must come within `read` ms (0: no limit). */
  startAnswer(read: number): void {
    this.clear();
    if (read > 0) this.answerTimer = setTimeout(onAnswerTimeout, timerDelay(read), this, read);
  }

  /** The answer's head came, or the handshake ended otherwise. */
  clear(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.answerTimer !== null) clearTimeout(this.answerTimer);
    this.connectTimer = null;
    this.answerTimer = null;
  }
}

/** The error of a handshake whose upstream did not answer within `read` ms: 504, as for HTTP. */
export function answerTimeoutError(read: number): RelayError {
  return new RelayError('ERR_READ_TIMEOUT', `the upstream did not answer the handshake within ${read} ms`);
}

function onConnectTimeout(timers: HandshakeTimers, connect: number): void {
  timers.clear();
  timers.handshake.fail(new RelayError('ERR_CONNECT_TIMEOUT', `connecting to the upstream timed out after ${connect} ms`));
}

function onAnswerTimeout(timers: HandshakeTimers, read: number): void {
  timers.clear();
  timers.handshake.fail(answerTimeoutError(read));
}
