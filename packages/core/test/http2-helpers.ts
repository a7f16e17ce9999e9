// HTTP/2 pieces the core tests share: a relay sending over http2Transport, and an HTTP/2 front for
// a relay with a client session to it. Each is closed through the calling file's `closers`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { listenHttp2, serveRelay, type RelayServer } from '@relay/testkit';
import { createRelay, http2Transport, type Http2TransportOptions, type Relay, type RelayOptions } from '../src/index.js';

export type Closers = Array<() => Promise<void> | void>;

/** A relay to `url` over `http2Transport(transport)`, served on 127.0.0.1. */
export async function relayOverHttp2(closers: Closers, url: string, transport: Http2TransportOptions = {}, options: Partial<RelayOptions> = {}): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: url, ...options, transport: http2Transport(transport) }));
  closers.push(() => served.close());
  return served;
}

/** An HTTP/2 front for `relay`, and a client session to it (its errors are the tests' to assert). */
export async function h2FrontSession(closers: Closers, relay: Relay): Promise<http2.ClientHttp2Session> {
  const front = await listenHttp2(http2.createServer(relay.handle));
  const session = http2.connect(front.url);
  session.on('error', () => {});
  closers.push(async () => {
    session.destroy();
    await front.close();
    await relay.shutdown({ timeout: 500 });
  });
  return session;
}

/** An upstream handler that refuses an upload before reading it: 413 with `Connection: close`, then closes. */
export function refuseUploadEarly(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
  res.end('too big');
  req.socket.destroySoon?.();
}
