// The frame-boundary tracker of transparent sessions, byte by byte: headers and payloads split
// anywhere, 7-, 16- and 64-bit lengths, masked and unmasked close frames.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameTracker, closeFrame } from '../src/frames.js';

/** An unmasked frame with `length` payload bytes. */
function frame(opcode: number, length: number, fin = true): Buffer {
  const header = length < 126 ? Buffer.from([0, length]) : length < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = (fin ? 0x80 : 0) | opcode;
  if (length >= 126 && length < 65_536) {
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else if (length >= 65_536) {
    header[1] = 127;
    header.writeUInt32BE(0, 2);
    header.writeUInt32BE(length, 6);
  }
  return Buffer.concat([header, Buffer.alloc(length, 7)]);
}

test('boundaries are found however the stream is cut, for every length encoding', () => {
  const stream = Buffer.concat([frame(1, 5), frame(2, 300), frame(0, 70_000, false), frame(9, 0), frame(0, 10)]);
  for (const size of [1, 2, 3, 7, 1000, stream.length]) {
    const tracker = new FrameTracker();
    for (let i = 0; i < stream.length; i += size) tracker.scan(stream.subarray(i, i + size), 0, false);
    assert.ok(tracker.atBoundary, `at a boundary after the last frame (pieces of ${size})`);
  }
  const tracker = new FrameTracker();
  tracker.scan(stream.subarray(0, 6), 0, false);
  assert.not.ok(tracker.atBoundary, 'inside the second frame’s header');
});

test('whole messages are counted once, at their last frame, whatever the cuts; control frames are not messages', () => {
  // A text message in two fragments with a ping between them, a binary one, a 16-bit-length text one, a pong, a close.
  const stream = Buffer.concat([frame(1, 3, false), frame(9, 2), frame(0, 4), frame(2, 10), frame(1, 300), frame(10, 0), closeFrame(1000, '', false)]);
  for (const size of [1, 2, 5, stream.length]) {
    const tracker = new FrameTracker();
    for (let i = 0; i < stream.length; i += size) tracker.scan(stream.subarray(i, i + size), 0, false);
    assert.is(tracker.messages, 3, `pieces of ${size}`);
  }
});

test('stopAtBoundary returns the offset just after the frame being read', () => {
  const stream = Buffer.concat([frame(2, 300), frame(1, 5)]);
  const tracker = new FrameTracker();
  tracker.scan(stream.subarray(0, 100), 0, false);
  const end = tracker.scan(stream.subarray(100), 0, true);
  assert.is(end, 304 - 100);
  assert.ok(tracker.atBoundary);
});

test('a close frame’s code is read, masked (from a client) or not; no code is 1005', () => {
  for (const masked of [true, false]) {
    const tracker = new FrameTracker();
    const bytes = closeFrame(4001, 'bye now', masked);
    for (const byte of bytes) tracker.scan(Buffer.from([byte]), 0, false);
    assert.is(tracker.closeCode, 4001);
    assert.is((bytes[1]! & 0x80) !== 0, masked);
  }
  const empty = new FrameTracker();
  empty.scan(Buffer.from([0x88, 0x00]), 0, false);
  assert.is(empty.closeCode, 1005);
});

test.run();
