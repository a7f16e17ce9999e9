// `Content-Encoding: deflate` as it is really sent: zlib-wrapped (RFC 9110 §8.4.1.2) or raw deflate
// without the wrapper (old IIS, some PHP), which browsers read too. The stream form of the fallback
// `decodeBuffer` makes for whole bodies.
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

const kOuter = Symbol('relay.body.deflateOuter');
type Inner = Transform & { [kOuter]?: DeflateDecoder };

/**
 * Whether two bytes open a zlib stream (RFC 1950 §2.2): compression method 8 and a header that is a
 * multiple of 31. A raw deflate stream starts with a block header, which does not pass both (the same
 * test browsers make).
 *
 * @example
 * isZlibHeader(0x78, 0x9c); // true
 */
export function isZlibHeader(first: number, second: number): boolean {
  return (first & 0x0f) === 8 && (first * 256 + second) % 31 === 0;
}

/**
 * Inflates a deflate body, zlib-wrapped or raw: the first two bytes choose `createInflate` or
 * `createInflateRaw` (a first chunk of one byte waits for the next). Output follows the reader's pace:
 * the inner inflater pauses while this stream's buffer is full, so a small bomb cannot fill memory.
 * Bytes after the end of the deflate stream are ignored, as zlib ignores them in a whole body; an
 * empty body inflates to nothing (empty content, as `decodeBuffer` reads it).
 *
 * @example
 * upstreamBody.pipe(new DeflateDecoder());
 */
export class DeflateDecoder extends Transform {
  private inner: Inner | null = null;
  /** The first byte, when it came alone. */
  private head: Buffer | null = null;
  private flushed: TransformCallback | null = null;
  /** The deflate stream has ended: zlib stops there even when more bytes follow. */
  private innerEnded = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Bytes after the end of the deflate stream are ignored, as zlib (and the buffered decodeBuffer) ignores them.
    if (this.innerEnded) {
      callback();
      return;
    }
    let bytes = chunk;
    if (this.inner === null) {
      // An empty chunk says nothing about the coding (and an empty body is empty content, `_flush`).
      if (chunk.length === 0) {
        callback();
        return;
      }
      bytes = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
      if (bytes.length < 2) {
        this.head = bytes;
        callback();
        return;
      }
      this.head = null;
      this.open(bytes);
    }
    // Called once the inflater has taken the chunk: one chunk at a time, at the pace of its output.
    this.inner!.write(bytes, callback);
  }

  override _flush(callback: TransformCallback): void {
    // The inflater ended before the body did (bytes followed the stream end): its `end` will not come again.
    if (this.innerEnded) {
      callback();
      return;
    }
    // An empty body is empty content, whatever its label (as `decodeBuffer` reads it): nothing to inflate.
    if (this.inner === null && this.head === null) {
      callback();
      return;
    }
    // A one-byte body is no deflate stream: zlib's inflater says so, as it does for whole bodies.
    const inner = this.inner ?? this.open(this.head!);
    this.flushed = callback;
    if (this.head !== null) inner.end(this.head);
    else inner.end();
    this.head = null;
  }

  override _read(size: number): void {
    this.inner?.resume();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.inner?.destroy();
    callback(error);
  }

  /** Called by the inner inflater's listeners. */
  output(chunk: Buffer): void {
    if (!this.push(chunk)) this.inner!.pause();
  }

  finish(): void {
    this.innerEnded = true;
    // Done, whether or not the body goes on: the zlib handle goes now rather than when this stream does.
    this.inner!.destroy();
    const callback = this.flushed;
    this.flushed = null;
    callback?.();
  }

  private open(start: Buffer): Inner {
    const inner: Inner = start.length >= 2 && !isZlibHeader(start[0]!, start[1]!) ? zlib.createInflateRaw() : zlib.createInflate();
    inner[kOuter] = this;
    inner.on('data', onInnerData);
    inner.on('end', onInnerEnd);
    inner.on('error', onInnerError);
    this.inner = inner;
    return inner;
  }
}

function onInnerData(this: Inner, chunk: Buffer): void {
  this[kOuter]!.output(chunk);
}

function onInnerEnd(this: Inner): void {
  this[kOuter]!.finish();
}

function onInnerError(this: Inner, error: Error): void {
  this[kOuter]!.destroy(error);
}
