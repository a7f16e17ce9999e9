import { Readable } from 'node:stream';

/**
 * A stream of one buffer, made afresh for each send: one push, no async iterator (cheaper than
 * `Readable.from`).
 *
 * @example
 * const body = new BufferStream(Buffer.from('{"a":1}'));
 */
export class BufferStream extends Readable {
  constructor(private readonly bytes: Buffer) {
    super();
  }

  override _read(): void {
    if (this.bytes.length > 0) this.push(this.bytes);
    this.push(null);
  }
}
