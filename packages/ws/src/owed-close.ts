import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { closeOpen } from './close-codes.js';
import { timerDelay } from './timers.js';
import { Backlog, BacklogWatch } from './write-progress.js';

/**
 * A close the relay owes one side of a terminating session while that side is still taking what
 * was queued for it before the close. `ws` starts its close timer when `close()` is called, not
 * when the close frame leaves, so a slow reader would be cut off in the middle of the data sent
 * before it; the relay therefore calls `close()` once the side's queue is empty (`written`), and
 * the timer runs from the close frame, as for a peer that got it at once. Until then the side is
 * a slow reader like any other: one that takes nothing for `stallTimeout` is destroyed.
 */
export class OwedClose {
  private timer: NodeJS.Timeout;
  /** The side's backlog at the last check, and when some of it was last seen taken. */
  private readonly watch = new BacklogWatch();
  private progressAt = Date.now();

  constructor(
    readonly side: WebSocket,
    /** The connection under `side`, for the progress inside a big write. */
    readonly socket: Duplex | null,
    readonly code: number,
    readonly reason: string | Buffer,
    readonly stallTimeout: number,
  ) {
    this.watch.check(side.bufferedAmount, socket);
    this.timer = setTimeout(onStallCheck, timerDelay(stallTimeout), this);
  }

  /** A write to the side completed. Returns true when its queue is empty and the close frame was sent. */
  written(): boolean {
    if (this.side.bufferedAmount !== 0) return false;
    clearTimeout(this.timer);
    closeOpen(this.side, this.code, this.reason);
    return true;
  }

  onStallCheck(): void {
    const now = Date.now();
    if (this.watch.check(this.side.bufferedAmount, this.socket) === Backlog.Took) this.progressAt = now;
    const wait = this.progressAt + this.stallTimeout - now;
    if (wait > 0) {
      this.timer = setTimeout(onStallCheck, timerDelay(wait), this);
      return;
    }
    // Its 'close' ends the session.
    this.side.terminate();
  }

  /** The side closed on its own (or the session ended): nothing is owed any more. */
  cancel(): void {
    clearTimeout(this.timer);
  }
}

function onStallCheck(owed: OwedClose): void {
  owed.onStallCheck();
}
