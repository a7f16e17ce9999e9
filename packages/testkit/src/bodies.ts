import { createHash } from 'node:crypto';
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

/** The SHA-256 of some bytes, hex: compares large bodies in an assertion message of one line. */
export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `size` bytes of a fixed non-repeating-looking pattern: a body whose every byte is checked. */
export function bytePattern(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let index = 0; index < size; index++) bytes[index] = (index * 31 + 7) & 0xff;
  return bytes;
}

/** An HTTP/2 answer as text: its headers (pseudo-headers included) and body. */
export interface H2Answer {
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on an HTTP/2 session, `body` (if any) sent whole; rejects when the stream errors. */
export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let text = '';
    let head: IncomingHttpHeaders = {};
    stream.setEncoding('utf8');
    stream.on('response', (received) => (head = received));
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve({ headers: head, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
}
