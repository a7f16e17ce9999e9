import { randomFillSync } from 'node:crypto';

/**
 * Follows the frame boundaries of one direction of a WebSocket byte stream without copying or
 * decoding payloads: it reads each frame header (RFC 6455 §5.2), skips the payload, and keeps the
 * code of a close frame. That is all a transparent relay needs to close a session cleanly: it may
 * only put a frame of its own between two frames.
 */
export class FrameTracker {
  /** Header bytes of the frame being read (at most 14). */
  private readonly header = Buffer.alloc(14);
  private headerLength = 0;
  private headerNeeded = 2;
  /** Payload bytes of the current frame not seen yet. */
  private remaining = 0;
  private opcode = 0;
  /** The payload of a close frame being read (control frames carry at most 125 bytes). */
  private closePayload: Buffer | null = null;
  private closeRead = 0;
  private closeMask: Buffer | null = null;
  /** The code of the first close frame seen: 1005 when it had none, 0 before one is seen. */
  closeCode = 0;
  /** Whole messages seen: text, binary or continuation frames with FIN set (one test per frame header). */
  messages = 0;

  /** True between two frames: a frame of the relay's own may be written here. */
  get atBoundary(): boolean {
    return this.headerLength === 0 && this.remaining === 0;
  }

  /**
   * Reads `chunk` from `start`. With `stopAtBoundary`, stops just after the first frame that ends
   * in it and returns that offset; otherwise returns `chunk.length`.
   */
  scan(chunk: Buffer, start: number, stopAtBoundary: boolean): number {
    let index = start;
    const length = chunk.length;
    while (index < length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, length - index);
        if (this.closePayload !== null) this.readClose(chunk, index, take);
        this.remaining -= take;
        index += take;
        if (this.remaining === 0 && this.frameEnded() && stopAtBoundary) return index;
        continue;
      }
      this.header[this.headerLength++] = chunk[index++]!;
      if (this.headerLength === 2) this.headerNeeded = headerSize(this.header);
      if (this.headerLength < this.headerNeeded) continue;
      this.startPayload();
      if (this.remaining === 0 && this.frameEnded() && stopAtBoundary) return index;
    }
    return length;
  }

  private startPayload(): void {
    const header = this.header;
    this.opcode = header[0]! & 0x0f;
    // FIN on a continuation (0), text (1) or binary (2) frame: the last frame of a message.
    if ((header[0]! & 0x80) !== 0 && this.opcode <= 0x2) this.messages++;
    const masked = (header[1]! & 0x80) !== 0;
    const short = header[1]! & 0x7f;
    let offset = 2;
    let payload = short;
    if (short === 126) {
      payload = header.readUInt16BE(2);
      offset = 4;
    } else if (short === 127) {
      // Lengths past 2^53 are not representable; such a frame is a protocol error the peer will see.
      payload = header.readUInt32BE(2) * 0x1_0000_0000 + header.readUInt32BE(6);
      offset = 10;
    }
    this.closeMask = masked ? Buffer.from(header.subarray(offset, offset + 4)) : null;
    this.headerLength = 0;
    this.headerNeeded = 2;
    this.remaining = payload;
    if (this.opcode === 0x8 && this.closeCode === 0) {
      this.closePayload = Buffer.alloc(Math.min(payload, 125));
      this.closeRead = 0;
    }
  }

  private readClose(chunk: Buffer, index: number, take: number): void {
    const payload = this.closePayload!;
    const room = Math.min(take, payload.length - this.closeRead);
    if (room > 0) chunk.copy(payload, this.closeRead, index, index + room);
    this.closeRead += room;
  }

  /** A frame ended: a close frame's code is read. Returns true (the caller's boundary). */
  private frameEnded(): boolean {
    const payload = this.closePayload;
    if (payload !== null) {
      this.closePayload = null;
      const mask = this.closeMask;
      if (mask !== null) for (let i = 0; i < Math.min(2, payload.length); i++) payload[i]! ^= mask[i & 3]!;
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    }
    return true;
  }
}

/** The full header size of a frame, from its first two bytes. */
function headerSize(header: Buffer): number {
  const short = header[1]! & 0x7f;
  const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
  return 2 + extended + ((header[1]! & 0x80) !== 0 ? 4 : 0);
}

/**
 * A close frame of the relay's own: `masked` towards the upstream (a client's frames are masked,
 * RFC 6455 §5.3), unmasked towards the client. The reason is cut to fit a control frame.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason).subarray(0, 123);
  const payloadLength = 2 + text.length;
  const headerLength = masked ? 6 : 2;
  const frame = Buffer.alloc(headerLength + payloadLength);
  frame[0] = 0x88;
  frame[1] = (masked ? 0x80 : 0) | payloadLength;
  frame.writeUInt16BE(code, headerLength);
  text.copy(frame, headerLength + 2);
  if (masked) {
    const mask = frame.subarray(2, 6);
    randomFillSync(mask);
    for (let i = 0; i < payloadLength; i++) frame[headerLength + i]! ^= mask[i & 3]!;
  }
  return frame;
}
