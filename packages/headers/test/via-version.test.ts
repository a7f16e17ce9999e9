// The response's Via entry names the protocol the upstream answered with (RFC 9110 §7.6.3): not always HTTP/1.1, since
// http2Transport exists and an HTTP/1.0 server still answers 1.0 (the transports set ProxyResponse.httpVersion).
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, http2Transport } from '@relay/core';
import { fetchRaw, listenHttp2, serveRelay } from '@relay/testkit';
import { headers } from '../src/index.js';

test('via: the response entry carries the upstream response version: "2" from an h2 upstream, "1.0" from an HTTP/1.0 one', async () => {
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('h2');
  });
  const h2Upstream = await listenHttp2(h2);
  const old = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok'));
  });
  await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
  const overH2 = await serveRelay(createRelay({ targetBaseUrl: h2Upstream.url, transport: http2Transport(), stages: [headers({ via: true })] }));
  const overOld = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${(old.address() as AddressInfo).port}`, stages: [headers({ via: true })] }));
  try {
    const fromH2 = await fetchRaw(`${overH2.url}/`);
    assert.is(fromH2.status, 200);
    assert.is(fromH2.headers.via, '2 relay');
    const fromOld = await fetchRaw(`${overOld.url}/`);
    assert.is(fromOld.status, 200);
    assert.is(fromOld.headers.via, '1.0 relay');
  } finally {
    await overH2.close();
    await overOld.close();
    await h2Upstream.close();
    await new Promise<void>((resolve) => old.close(() => resolve()));
  }
});

test.run();
