// The part of the conformance suite that knows where an upstream runs: over the network (a real
// http.Server on 127.0.0.1) or in memory (the listener handed to the transport). Cases only see
// `serve(handler)` and get a relay on a real port in front of that upstream.
import { request, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { listenHttp2, serveRelay, startUpstream, type RelayServer } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions, type Transport } from '../../src/index.js';

/** Limits a case asks the transport for. */
export interface TransportLimits {
  maxSockets?: number;
}

/** A transport under test. */
export interface TransportSubject {
  /** Printed before the count of cases: `http`, `got`, `memory`. */
  name: string;
  /**
   * `network`: the upstream is a real HTTP/1.1 server; `http2`: a real h2c server (node:http2's
   * compatibility API runs the handler); `memory`: the transport runs the listener itself.
   */
  upstream: 'network' | 'http2' | 'memory';
  /** Makes the transport; a memory transport runs `listener` as its upstream. */
  create(listener: RequestListener, limits: TransportLimits): Transport;
}

/** A relay on a real port in front of an upstream running `handler`. */
export interface Served {
  url: string;
  port: number;
  relay: Relay;
  /** Every distinct connection (for HTTP/2: session) the upstream saw a request on. */
  sockets: Set<Socket | Http2Session>;
  close(): Promise<void>;
}

/** What a case is given. */
export interface Harness {
  subject: TransportSubject;
  serve(handler: RequestListener, options?: Partial<RelayOptions>, limits?: TransportLimits): Promise<Served>;
  /** Runs `close` after the current case, pass or fail (servers a case opened itself). */
  defer(close: () => unknown): void;
  /** Closes everything the current case opened and did not close; run after each case. */
  cleanup(): Promise<void>;
}

export function harness(subject: TransportSubject): Harness & { serveOnce(handler: RequestListener, options: Partial<RelayOptions>, limits: TransportLimits): Promise<Served> } {
  let pending: Array<() => unknown> = [];
  return {
    subject,
    defer(close) {
      pending.push(close);
    },
    async cleanup() {
      const closers = pending.reverse();
      pending = [];
      for (const close of closers) await close();
    },
    async serve(handler, options = {}, limits = {}) {
      const served = await this.serveOnce(handler, options, limits);
      pending.push(served.close);
      return served;
    },
    async serveOnce(handler: RequestListener, options: Partial<RelayOptions>, limits: TransportLimits): Promise<Served> {
      const sockets = new Set<Socket | Http2Session>();
      const counted = (req: IncomingMessage, res: ServerResponse) => {
        // An HTTP/2 request's `socket` is a proxy made per stream: its session is the connection.
        const session = (req as IncomingMessage & { stream?: { session?: Http2Session } }).stream?.session;
        sockets.add(session ?? req.socket);
        handler(req, res);
      };
      if (subject.upstream === 'memory') {
        const served = await serveRelay(
          createRelay({ targetBaseUrl: 'http://upstream.test', ...options, transport: subject.create(counted, limits) }),
        );
        return wrap(served, sockets, async () => {});
      }
      if (subject.upstream === 'http2') {
        const upstream = await startHttp2Upstream(counted);
        const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, ...options, transport: subject.create(counted, limits) }));
        return wrap(served, sockets, upstream.close);
      }
      const upstream = await startUpstream(counted, { streaming: true });
      const served = await serveRelay(
        createRelay({ targetBaseUrl: upstream.url, ...options, transport: subject.create(counted, limits) }),
      );
      return wrap(served, sockets, () => upstream.close());
    },
  };
}

/** An h2c upstream on 127.0.0.1 running `handler` through node:http2's compatibility API. */
function startHttp2Upstream(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  return listenHttp2(createHttp2Server(handler as unknown as Parameters<typeof createHttp2Server>[1]));
}

function wrap(served: RelayServer<Relay>, sockets: Set<Socket | Http2Session>, closeUpstream: () => Promise<void>): Served {
  let closing: Promise<void> | null = null;
  return {
    url: served.url,
    port: served.port,
    relay: served.relay,
    sockets,
    close: () =>
      (closing ??= (async () => {
        await served.close();
        await closeUpstream();
      })()),
  };
}

/** A response read to its end (or its abort) by `open`. */
export interface StreamedResponse {
  res: IncomingMessage;
  body: Buffer;
  complete: boolean;
}

/**
 * A real client request on a fresh connection that the case drives itself: write the body,
 * pause the response, watch chunks arrive.
 */
export function open(url: string, options: { method?: string; headers?: Record<string, string | number> } = {}) {
  const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
  req.on('error', () => {});
  const head = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  const done = head.then(
    (res) =>
      new Promise<StreamedResponse>((resolve) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', () => {});
        const finish = () => resolve({ res, body: Buffer.concat(chunks), complete: res.complete });
        res.on('end', finish);
        res.on('close', () => {
          if (!res.complete) finish();
        });
      }),
  );
  // A case that destroys its request on purpose never awaits these.
  head.catch(() => {});
  done.catch(() => {});
  return { req, head, done };
}

/** Writes `total` bytes of a fixed pattern to `writable` honouring backpressure; counts what was accepted. */
export function pump(writable: NodeJS.WritableStream, total: number, chunk: Buffer): { written(): number; finished: Promise<void> } {
  let written = 0;
  const finished = new Promise<void>((resolve) => {
    const step = () => {
      while (written < total) {
        written += chunk.length;
        if (!writable.write(chunk)) {
          writable.once('drain', step);
          return;
        }
      }
      writable.end();
      resolve();
    };
    step();
  });
  return { written: () => written, finished };
}
