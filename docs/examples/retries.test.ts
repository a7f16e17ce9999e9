// The example of docs/retries.md, run in CI: a flaky upstream behind a relay with retries,
// per-attempt timeouts and an overall deadline.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function stop(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

test('docs/retries.md: 503 then 200 upstream, the client sees the 200; a POST is sent once', async () => {
  // An upstream that is busy for every other request.
  let served = 0;
  const upstream = http.createServer((req, res) => {
    served++;
    req.resume();
    if (served % 2 === 1) res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
    else res.end(`hello from the upstream (${req.method})`);
  });
  const upstreamUrl = await listen(upstream);

  const relay = createRelay({
    targetBaseUrl: upstreamUrl,
    timeout: { connect: 1_000, read: 5_000 }, // each attempt
    stages: [retry({ maxRetries: 2, backoffFactor: 50, jitter: true, deadline: 8_000 })], // all attempts and waits together
  });
  await relay.startup();
  const gateway = http.createServer(relay.handle);
  const gatewayUrl = await listen(gateway);

  const get = await fetch(`${gatewayUrl}/hello`);
  assert.is(get.status, 200);
  assert.is(await get.text(), 'hello from the upstream (GET)');
  assert.is(served, 2, 'one retry');

  const post = await fetch(`${gatewayUrl}/orders`, { method: 'POST', body: '{"item":1}' });
  assert.is(post.status, 503, 'a POST is not retried unless `methods` says so');
  assert.is(await post.text(), 'busy');
  assert.is(served, 3);

  await stop(gateway);
  await relay.shutdown();
  await stop(upstream);
});

test.run();
