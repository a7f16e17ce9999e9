// Review s39 (@relay/ws, issue 6 "the relay's shutdown() closes relayed sockets with 1001"): core's README
// promises that `shutdown({ timeout })` "waits for in-flight ones up to shutdownTimeout, aborts the rest (a
// client still waiting for a head gets 503 …)". With a websocket transport, core first awaits the websocket
// shutdown (up to closeTimeout, 5 s by default, for a peer that does not answer its 1001: a terminating
// session waits for the close frame), and only then starts the HTTP drain's timer: an HTTP request in flight
// is aborted after closeTimeout + timeout (5.5 s here, not 0.5 s). The HTTP deadline should run alongside
// the sessions' closing.
import { get } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { websocket } from '../src/index.js';
import { rawHandshake, startGateway, startWsUpstream } from './helpers.js';

test('terminating: shutdown({ timeout: 500 }) with a WebSocket peer that never answers its close: an HTTP request in flight is answered 503 at the deadline, not after closeTimeout + deadline', async () => {
  const upstream = await startWsUpstream();
  // An HTTP route that never answers: the request stays in flight until the relay's shutdown deadline.
  upstream.server.on('request', () => {});
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ onClientMessage: () => undefined }) });
  // A raw WebSocket client: reads and drops what it gets, never answers the relay's close frame.
  const silent = await rawHandshake(gateway.port, '/chat');
  const answered = new Promise<{ status: number | string; at: number }>((resolve) => {
    const req = get(`http://127.0.0.1:${gateway.port}/slow`, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, at: Date.now() });
    });
    req.on('error', (error) => resolve({ status: error.message, at: Date.now() }));
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const started = Date.now();
  const shutdown = gateway.relay.shutdown({ timeout: 500 }).then(() => Date.now());
  try {
    const http = await answered;
    const httpTook = http.at - started;
    // 500 ms deadline, plus the 1 s the relay gives aborted requests to report back, plus a wide margin.
    assert.ok(httpTook < 3_000, `the in-flight HTTP request was answered ${httpTook} ms after shutdown({ timeout: 500 }) (status ${http.status})`);
    assert.is(http.status, 503);
  } finally {
    silent.destroy();
    await shutdown;
    await gateway.close();
    await upstream.close();
  }
});

test.run();
