// Test clients for bodies that arrive in pieces, and an upstream that records what it saw of a body.
import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { startUpstream, type Upstream } from '@relay/testkit';

/** What a streaming upstream saw of one request body. */
export interface SeenBody {
  bytes: number;
  ended: boolean;
  closed: boolean;
}

/**
 * An upstream that reads each request body as a stream, recording how much arrived and whether it
 * ended, and answers 200 `{ bytes }` once it ends (or at once, with `answerEarly`).
 */
export async function countingUpstream(options: { answerEarly?: boolean } = {}): Promise<{ upstream: Upstream; seen: SeenBody[] }> {
  const seen: SeenBody[] = [];
  const upstream = await startUpstream(
    (req: IncomingMessage, res: ServerResponse) => {
      const body: SeenBody = { bytes: 0, ended: false, closed: false };
      seen.push(body);
      if (options.answerEarly) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('early ');
      }
      req.on('data', (chunk: Buffer) => (body.bytes += chunk.length));
      req.on('end', () => {
        body.ended = true;
        res.end(JSON.stringify({ bytes: body.bytes }));
      });
      req.on('close', () => (body.closed = true));
      req.on('error', () => {});
      res.on('error', () => {});
    },
    { streaming: true },
  );
  return { upstream, seen };
}

/** A response as the chunked client saw it. */
export interface ChunkedResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** False when the connection closed before the response ended. */
  complete: boolean;
  /** Chunks written before the response came (or the connection broke). */
  written: number;
}

/**
 * Sends `chunks` chunks of `chunkSize` bytes as a chunked body, one after another with `gapMs`
 * between them, and stops sending as soon as a response head arrives. With `afterHead`, sends one
 * chunk, waits for the response head, then sends the rest. Never ends the body if the response comes
 * first; resolves when the response ends or the connection closes.
 */
export function sendChunked(
  url: string,
  chunkSize: number,
  chunks: number,
  options: { gapMs?: number; afterHead?: boolean } = {},
): Promise<ChunkedResult> {
  const gapMs = options.gapMs ?? 5;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } });
    let written = 0;
    let answered = false;
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    const chunk = Buffer.alloc(chunkSize, 0x61);
    const writeNext = (): void => {
      if (stopped) return;
      if (written === chunks) {
        req.end();
        return;
      }
      written++;
      req.write(chunk);
      // With afterHead, the rest waits for the response head.
      if (options.afterHead && !answered) return;
      timer = setTimeout(writeNext, gapMs);
    };
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.on('response', (res) => {
      answered = true;
      if (options.afterHead) writeNext();
      else {
        stopped = true;
        if (timer !== null) clearTimeout(timer);
      }
      const parts: Buffer[] = [];
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        stopped = true;
        if (timer !== null) clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString(), complete: res.complete, written });
      };
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', finish);
      res.on('error', () => {});
      res.on('close', finish);
    });
    req.flushHeaders();
    writeNext();
  });
}

/** What a client that honours `Expect: 100-continue` saw. */
export interface ContinueResult {
  /** Whether `100 Continue` came (and so the body was sent). */
  continued: boolean;
  /** The final status, or 0 when nothing came within the wait. */
  status: number;
  body: string;
}

/**
 * Sends a POST with `Expect: 100-continue` as node:http's client does: the body only after `100 Continue`.
 * Resolves with status 0 when neither the 100 nor a final answer comes within `waitMs`.
 */
export function sendExpectingContinue(url: string, headers: Record<string, string>, body: Buffer | string, waitMs = 3000): Promise<ContinueResult> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent: false, headers: { ...headers, expect: '100-continue', 'content-length': String(Buffer.byteLength(body)) } });
    let continued = false;
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ continued, status: 0, body: '' });
    }, waitMs);
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ continued, status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() });
      });
    });
    req.on('error', () => {
      clearTimeout(timer);
      resolve({ continued, status: 0, body: '' });
    });
  });
}
