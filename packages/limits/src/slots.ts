import type { Duplex, Readable } from 'node:stream';
import type { HeaderRecord, UpgradeHandoff } from '@relay/core';
import type { IncomingMessage } from 'node:http';
import { assertPositiveInteger } from './options.js';

/**
 * In-flight counts per key: `concurrencyLimit()`'s decision as a plain object, usable without a
 * relay (a job runner, another framework).
 *
 * @example
 * const uploads = new SlotTable(2);
 * const slot = uploads.acquire(userId);
 * if (slot === null) return reply(429);
 * try { await work(); } finally { slot.release(); }
 */
export class SlotTable {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {
    assertPositiveInteger(max, 'SlotTable: max');
  }

  /** Takes a slot for `key`, or returns `null` when `max` are taken. */
  acquire(key: string): Slot | null {
    const count = this.counts.get(key) ?? 0;
    if (count >= this.max) return null;
    this.counts.set(key, count + 1);
    return new Slot(this, key);
  }

  /** @internal Called once per slot, by `Slot.release`. */
  free(key: string): void {
    const count = (this.counts.get(key) ?? 1) - 1;
    if (count <= 0) this.counts.delete(key);
    else this.counts.set(key, count);
  }
}

const kSlot = Symbol('relay.limits.slot');
type Tagged<T> = T & { [kSlot]?: Slot };

/** One request's (or one WebSocket session's) place in a `SlotTable`; released exactly once. */
export class Slot {
  private released = false;

  constructor(
    private readonly table: SlotTable,
    private readonly key: string,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.table.free(this.key);
  }

  /** Holds the slot until `stream` closes (a response body, a client socket). */
  holdUntilClose(stream: Readable | Duplex): void {
    if (stream.closed) {
      this.release();
      return;
    }
    (stream as Tagged<Readable>)[kSlot] = this;
    stream.once('close', onStreamClose);
  }
}

function onStreamClose(this: Tagged<Readable>): void {
  this[kSlot]?.release();
}

/**
 * A WebSocket hand-off that keeps its slot while the session lives: released when the relay
 * rejects the handshake, when the client is aborted before `accept`, or when the accepted
 * client's socket closes.
 */
export class HeldHandoff implements UpgradeHandoff {
  private accepted = false;

  constructor(
    private readonly inner: UpgradeHandoff,
    private readonly slot: Slot,
    signal: AbortSignal,
  ) {
    // A stage outside may drop this 101 (and this hand-off) from view: the relay then aborts the client.
    if (signal.aborted) slot.release();
    else signal.addEventListener('abort', () => {
      if (!this.accepted) slot.release();
    }, { once: true });
  }

  accept(incoming: IncomingMessage, socket: Duplex, head: Buffer, headers: HeaderRecord): void {
    this.accepted = true;
    this.slot.holdUntilClose(socket);
    this.inner.accept(incoming, socket, head, headers);
  }

  reject(reason: Error): void {
    this.slot.release();
    this.inner.reject(reason);
  }
}
