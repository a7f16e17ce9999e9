// rateLimit({ key: { cookie } }) finds the cookie however the client split its Cookie fields.
import http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { listenHttp2, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { rateLimit } from '../src/index.js';

test('key { cookie }: an HTTP/2 client that sends its cookies as crumbs (RFC 9113 §8.2.3) is keyed by its session cookie', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 1, duration: 60_000, key: { cookie: 'session' } })] });
  await relay.startup();
  const front = await listenHttp2(http2.createServer(relay.handle as never));
  const session = http2.connect(front.url);
  session.on('error', () => {});
  const get = (cookie: string[]) =>
    new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/', cookie });
      stream.on('response', (headers) => {
        stream.resume();
        stream.on('end', () => resolve(Number(headers[':status'])));
      });
      stream.on('error', reject);
      stream.end();
    });
  try {
    assert.is(await get(['theme=dark', 'session=alice']), 200);
    assert.is(await get(['theme=dark', 'session=bob']), 200, 'bob has his own bucket, not the address bucket alice emptied');
  } finally {
    session.close();
    await front.close();
    await relay.shutdown({ timeout: 1000 });
    await upstream.close();
  }
});

test('key { cookie }: the cookie is found when an HTTP/1.1 request carries two Cookie lines', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 1, duration: 60_000, key: { cookie: 'session' } })] }));
  try {
    const alice = await sendRaw(served.port, 'GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark\r\nCookie: session=alice\r\nConnection: close\r\n\r\n');
    const bob = await sendRaw(served.port, 'GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark\r\nCookie: session=bob\r\nConnection: close\r\n\r\n');
    assert.match(alice, /^HTTP\/1\.1 200/);
    assert.match(bob, /^HTTP\/1\.1 200/, 'bob has his own bucket');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
