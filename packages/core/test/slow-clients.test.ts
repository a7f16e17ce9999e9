import { createServer } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, startUpstream, waitFor } from '@relay/testkit';
import { createRelay, gatewayServerOptions } from '../src/index.js';

/** Opens a connection, sends `chunks` one every `everyMs`, and resolves with what the server answered and when. */
function drip(port: number, chunks: string[], everyMs: number): Promise<{ answer: string; closedAfter: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let index = 0;
    const timer = setInterval(() => {
      if (index < chunks.length && !socket.destroyed) socket.write(chunks[index++]!);
    }, everyMs);
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, closedAfter: Date.now() - started });
    });
  });
}

test('gatewayServerOptions: a 10 s head deadline, the Node request deadline, checked every second', () => {
  assert.equal({ ...gatewayServerOptions }, { headersTimeout: 10_000, requestTimeout: 300_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 });
});

test('slowloris on the request head: 408 and the connection closed at headersTimeout; the upstream never reached', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server = createServer({ ...gatewayServerOptions, headersTimeout: 600, requestTimeout: 5_000, connectionsCheckingInterval: 100 }, relay.handle);
  const port = Number(new URL(await listen(server)).port);
  const head = 'GET /x HTTP/1.1\r\nHost: gw\r\n' + Array.from({ length: 100 }, (_, i) => `X-Slow-${i}: y\r\n`).join('');
  const { answer, closedAfter } = await drip(port, head.match(/[\s\S]{1,8}/g)!, 50);
  assert.match(answer, /^HTTP\/1.1 408 /);
  assert.ok(closedAfter < 3_000, `closed after ${closedAfter} ms`);
  assert.is(upstream.requests.length, 0);
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test('slowloris on the request body: cut at requestTimeout, and the upstream request is aborted', async () => {
  let upstreamClosed = false;
  const upstream = await startUpstream((req) => req.on('close', () => (upstreamClosed = true)), { streaming: true });
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server = createServer({ ...gatewayServerOptions, headersTimeout: 500, requestTimeout: 1_000, connectionsCheckingInterval: 100 }, relay.handle);
  const port = Number(new URL(await listen(server)).port);
  const chunks = ['POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n', ...Array.from({ length: 200 }, () => 'b')];
  const { closedAfter } = await drip(port, chunks, 50);
  assert.ok(closedAfter < 4_000, `closed after ${closedAfter} ms`);
  assert.ok(await waitFor(() => upstreamClosed, 2_000), 'the upstream request was aborted');
  assert.ok(await waitFor(() => relay.inFlight === 0), 'nothing left in flight');
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test.run();
