// The request body an HTTP/2 attempt has sent so far, kept so that a stream the upstream refused
// unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream id: RFC 9113 §8.7) can be sent again
// on a new stream: every gRPC call and every POST has a body, and a server rotating its connections
// (GOAWAY, then close) refuses a few of them in flight.
import type { Writable } from 'node:stream';

/** The most body bytes kept for a resend: past it the chunks are dropped, and a refused stream fails as it did before. */
export const resendBodyLimit = 64 * 1024;

/** The chunks the body gave its stream, oldest first: references to them, never copies. */
export class SentBody {
  readonly chunks: Array<Buffer | string> = [];
  bytes = 0;

  /** Keeps `chunk`; false once the body outgrew `resendBodyLimit` (the kept chunks are then let go). */
  add(chunk: Buffer | string): boolean {
    this.bytes += chunk.length;
    if (this.bytes > resendBodyLimit) {
      this.chunks.length = 0;
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  /** Writes the kept chunks to `stream` (at most `resendBodyLimit` bytes: its buffer holds them), before the rest of the body is piped. */
  writeTo(stream: Writable): void {
    for (const chunk of this.chunks) stream.write(chunk);
  }
}
