import type { ClientInfo } from '../request/client.js';
import type { RelayError } from '../errors.js';

/** What the relay tracks of each request in flight, to drain or abort it on shutdown. */
export interface InFlight {
  client: ClientInfo | null;
  /** Aborts the request at the shutdown deadline. */
  abortForShutdown(reason: RelayError): void;
  /** Links of the in-flight list; owned by `InFlightList`. */
  previousInFlight: InFlight | null;
  nextInFlight: InFlight | null;
  listed: boolean;
}

/**
 * The requests a relay has in flight, as an intrusive doubly linked list: adding and removing
 * allocate nothing. A `Set` with this churn (one add and one delete per request) made V8
 * promote every in-flight request to the old generation and run a mark-compact every few
 * thousand requests; the list keeps them in the young generation, where they die.
 */
export class InFlightList {
  private head: InFlight | null = null;
  size = 0;

  add(entry: InFlight): void {
    entry.previousInFlight = null;
    entry.nextInFlight = this.head;
    if (this.head !== null) this.head.previousInFlight = entry;
    this.head = entry;
    entry.listed = true;
    this.size++;
  }

  /** Removes `entry`; a second call does nothing. */
  delete(entry: InFlight): void {
    if (!entry.listed) return;
    entry.listed = false;
    const { previousInFlight, nextInFlight } = entry;
    if (previousInFlight !== null) previousInFlight.nextInFlight = nextInFlight;
    else this.head = nextInFlight;
    if (nextInFlight !== null) nextInFlight.previousInFlight = previousInFlight;
    entry.previousInFlight = null;
    entry.nextInFlight = null;
    this.size--;
  }

  /** A snapshot of the entries, safe to iterate while they remove themselves. */
  entries(): InFlight[] {
    const all: InFlight[] = [];
    for (let entry = this.head; entry !== null; entry = entry.nextInFlight) all.push(entry);
    return all;
  }

  clear(): void {
    for (const entry of this.entries()) this.delete(entry);
  }
}
