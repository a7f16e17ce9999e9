// Review s41: HTTP/2 on both sides (node:http2 clients and upstreams) through the relay.
import http2, { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { listenHttp2 } from '@relay/testkit';
import { createRelay, http2Transport, type Http2TransportOptions, type Relay, type RelayOptions } from '../src/index.js';
import { h2FrontSession, type Closers } from './http2-helpers.js';

const test = suite('review s41 h2');
const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

interface Upstream {
  url: string;
  streams: number;
  open: number;
  sessions: http2.ServerHttp2Session[];
}

async function h2Upstream(handler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<Upstream> {
  const server = http2.createServer({ settings });
  const up: Upstream = { url: '', streams: 0, open: 0, sessions: [] };
  server.on('session', (s) => up.sessions.push(s));
  server.on('stream', (stream, headers) => {
    up.streams++;
    up.open++;
    stream.on('close', () => up.open--);
    stream.on('error', () => {});
    handler(stream, headers);
  });
  const listening = await listenHttp2(server);
  up.url = listening.url;
  closers.push(() => listening.close());
  return up;
}

function makeRelay(url: string, transport: Http2TransportOptions = {}, options: Partial<RelayOptions> = {}): Relay {
  return createRelay({ targetBaseUrl: url, transport: http2Transport(transport), ...options });
}

test('REFUSED_STREAM on a POST with a small body (h2 client → h2 upstream): the request is sent again, or the client stream is refused too so the client can retry; never a 502 for a request the upstream never processed', async () => {
  let first = true;
  const bodies: string[] = [];
  const up = await h2Upstream((stream) => {
    if (first) {
      first = false;
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => {
      bodies.push(body);
      stream.respond({ ':status': 200 });
      stream.end(`got ${body}`);
    });
  });
  const relay = makeRelay(up.url);
  const session = await h2FrontSession(closers, relay);
  const outcome = await new Promise<{ status: number; body: string; rstCode?: number }>((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/submit', 'content-type': 'text/plain' });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: string) => (body += c));
    stream.on('error', () => {});
    stream.on('close', () => resolve({ status, body, rstCode: stream.rstCode }));
    stream.end('hello');
  });
  const resent = outcome.status === 200 && outcome.body === 'got hello';
  const refused = outcome.status === 0 && outcome.rstCode === constants.NGHTTP2_REFUSED_STREAM;
  assert.ok(resent || refused, `status ${outcome.status} body ${JSON.stringify(outcome.body)} rst ${outcome.rstCode}`);
  if (resent) assert.equal(bodies, ['hello']);
});

test.run();
