import type { Duplex } from 'node:stream';

/** How a side's write backlog changed between two checks. */
export const enum Backlog {
  /** Unchanged: nothing was written to the side, nothing queued for it. */
  Still,
  /** Some of it was taken: the side is reading (write progress). */
  Took,
  /** Only more was queued: the relay read the other side. */
  Grew,
}

/** node's native handle of a stream (libuv's TCP or pipe; for TLS, the TLS wrap over its TCP `_parent`): internals, read only when present. */
interface NativeHandle {
  writeQueueSize?: unknown;
  _parent?: NativeHandle | null;
}
type WithHandle = Duplex & { _handle?: NativeHandle | null };

/**
 * Bytes of `stream`'s writes still inside libuv. They go down as the kernel takes part of a write,
 * while `writableLength` counts a write as a whole until all of it is written (one big message,
 * or every chunk queued meanwhile, sent as one `writev`): for a slow reader, the only sign of
 * progress short of the write's end. Node's own socket timeout reads the same field to tell a slow
 * write from a stalled one (lib/net.js, `_onTimeout`); over TLS, the TCP handle's count is added.
 * 0 for a stream without a handle (HTTP/2).
 */
function handleBacklog(stream: Duplex | null): number {
  const handle = stream === null ? undefined : (stream as WithHandle)._handle;
  if (handle === undefined || handle === null) return 0;
  // Over TLS the wrap's own count moves only when a whole write is out; the TCP handle under it
  // moves as the kernel takes bytes.
  return queueSize(handle) + (handle._parent === undefined || handle._parent === null ? 0 : queueSize(handle._parent));
}

function queueSize(handle: NativeHandle): number {
  return typeof handle.writeQueueSize === 'number' ? handle.writeQueueSize : 0;
}

/**
 * Watches the write backlog of one side across the checks of a timer (the idle rule, a close
 * waiting behind data): what was queued for it and what its socket's handle still holds.
 */
export class BacklogWatch {
  private queued = 0;
  private inHandle = 0;

  /**
   * `queued`: what the relay queued for the side (`writableLength`, a WebSocket's `bufferedAmount`);
   * `stream`: the side's connection, for its handle. Compares with the last check, then records.
   */
  check(queued: number, stream: Duplex | null): Backlog {
    const inHandle = handleBacklog(stream);
    let change = Backlog.Still;
    if (queued < this.queued || inHandle < this.inHandle) change = Backlog.Took;
    else if (queued !== this.queued || inHandle !== this.inHandle) change = Backlog.Grew;
    this.queued = queued;
    this.inHandle = inHandle;
    return change;
  }
}
