import type { Server } from 'node:http';
import https from 'node:https';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { close, fetchRaw, listen, serveRelay, tlsFixture } from '@relay/testkit';
import {
  concurrencyLimitDefaults,
  connectDefaults,
  cookiesDefaults,
  gotTransportDefaults,
  headersDefaults,
  httpTransportDefaults,
  relayWithEveryOption,
  retryDefaults,
  rateLimitDefaults,
  rewriteLocationDefaults,
  websocketDefaults,
} from './configuration.js';

test('every factory accepts its options spelled out with their defaults', () => {
  const stages = [cookiesDefaults(), rewriteLocationDefaults(), retryDefaults(), headersDefaults()];
  assert.equal(stages.map((stage) => stage.name).length, 4);
  assert.is(typeof httpTransportDefaults().bind, 'function');
  assert.is(typeof gotTransportDefaults().bind, 'function');
  assert.is(typeof websocketDefaults().bind, 'function');
  assert.equal([rateLimitDefaults().name, concurrencyLimitDefaults().name], ['rate-limit', 'concurrency-limit']);
  const relay = relayWithEveryOption(stages);
  assert.equal({ ...relay.timeouts }, { connect: 5_000, read: 30_000, write: 30_000, pool: 10_000 });
  assert.is(relay.target.origin, 'https://auth.internal:8443');
  assert.is(typeof connectDefaults(relay), 'function');
});

test('the defaults behave like no options at all: a request through every default stage to a TLS upstream', async () => {
  const upstream = https.createServer(tlsFixture, (req, res) => {
    res.setHeader('set-cookie', 'sid=1; Domain=auth.internal');
    res.end(`${req.headers.host} ${req.url}`);
  });
  const port = Number(new URL(await listen(upstream)).port);
  // relayWithEveryOption targets https://auth.internal:8443; the same stages and transport, pointed at a local TLS upstream:
  const relay = createRelay({
    targetBaseUrl: `https://localhost:${port}`,
    stages: [cookiesDefaults(), rewriteLocationDefaults(), retryDefaults(), headersDefaults()],
    transport: httpTransportDefaults(),
    tls: { ca: tlsFixture.cert },
  });
  const gateway = await serveRelay(relay);
  const response = await fetchRaw(`${gateway.url}/login?x=1`);
  assert.equal([response.status, response.text, response.headers['set-cookie']], [200, `localhost:${port} /login?x=1`, ['sid=1; Domain=auth.internal']]);
  await gateway.close();
  await close(upstream as unknown as Server);
});

test.run();
