import { createServer } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, listen, memoryLogger, sendRaw, serveRelay, startFaultyUpstream, startUpstream, waitFor } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';
import { createRelay, httpTransport } from '../src/index.js';

// Issue 13, items 2, 15 and 16: exchanges always end, whatever the client or the caller does.

test('item 2: pipelined requests whose client left leave nothing in flight, and shutdown is fast', async () => {
  // The answers come after the clients left, into queued pipelined responses that get no `close` of their own.
  const upstream = await startUpstream((_req, res) => {
    setTimeout(() => res.end('late'), 1500);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, shutdownTimeout: 10_000 }));
  const connections = 60;
  const perConnection = 4;
  const request = 'GET /slow HTTP/1.1\r\nHost: gw\r\n\r\n';
  const sockets = Array.from({ length: connections }, () => {
    const socket = connect(served.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(request.repeat(perConnection));
    return socket;
  });
  // On a busy machine some may be answered before all are in: what matters is what is left after.
  await waitFor(() => served.relay.inFlight === connections * perConnection, 5000);
  assert.ok(served.relay.inFlight > 0, 'requests are in flight when the clients leave');
  for (const socket of sockets) socket.destroy();
  assert.ok(await waitFor(() => served.relay.inFlight === 0, 8000), `in flight after the clients left: ${served.relay.inFlight}`);
  await close(served.server);
  const started = Date.now();
  await served.relay.shutdown();
  const took = Date.now() - started;
  assert.ok(took < 3000, `shutdown took ${took} ms (deadline 10 000 ms)`);
  await upstream.close();
});

test('item 15: an onError that throws gets the client a 500, a log line, and nothing stays in flight', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9', logger });
  await relay.startup();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const server = createServer((req, res) => {
    const sync = req.url === '/sync';
    relay.dispatch(req, res, {
      path: req.url!.startsWith('/bad') ? '/..%2f' : req.url!,
      mountPath: '',
      onError: sync || req.url!.startsWith('/bad')
        ? () => {
            throw new Error('handler bug');
          }
        : async () => {
            throw new Error('async handler bug');
          },
    });
  });
  const port = Number(new URL(await listen(server)).port);
  for (const target of ['/sync', '/async', '/bad']) {
    const raw = await sendRaw(port, `GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`, 3000);
    assert.is(raw.slice(9, 12), '500', `${target} → ${raw.split('\r\n')[0] || '(no answer)'}`);
  }
  assert.ok(await waitFor(() => relay.inFlight === 0, 2000), `in flight: ${relay.inFlight}`);
  const lines = logger.lines.filter((line) => line.message.startsWith('the onError handler given to relay.dispatch threw'));
  assert.is(lines.length, 3);
  assert.is(lines[0]!.level, 'error');
  await delay(50);
  process.off('unhandledRejection', onUnhandled);
  assert.equal(unhandled, []);
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test('item 16: an upstream answer before the upload ended gets Connection: close and the connection is closed', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(413, { 'content-length': '8' }).end('too big\n');
  }, { streaming: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const started = Date.now();
  const raw = await sendRaw(served.port, 'POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1048576\r\n\r\nx', 5000);
  const took = Date.now() - started;
  assert.is(raw.slice(9, 12), '413', raw.split('\r\n')[0]);
  assert.match(raw, /\r\nconnection: close\r\n/i);
  assert.ok(took < 4000, `the relay closed the connection (${took} ms; sendRaw gives up at 5 000)`);
  // A complete upload keeps its connection alive.
  const done = await sendRaw(served.port, 'POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\n\r\nx', 1000);
  assert.match(done, /\r\nconnection: keep-alive\r\n/i);
  assert.ok(await waitFor(() => served.relay.inFlight === 0, 2000));
  await served.close();
  await upstream.close();
});

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport], ['undici', undiciTransport]] as const) {
  test(`item 16 (${name}): an upload the upstream answered early never keeps the upstream connection busy`, async () => {
    // The upstream answers on the head and never reads the body; the client trickles its upload and leaves.
    const faulty = await startFaultyUpstream();
    const served = await serveRelay(createRelay({ targetBaseUrl: faulty.url, transport: transport(), timeout: { read: 500, write: 500 } }));
    const sockets = Array.from({ length: 5 }, () => {
      const socket = connect(served.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('POST /ok/u HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\nb');
      return socket;
    });
    await waitFor(() => faulty.accepted === 5, 3000);
    await delay(300);
    for (const socket of sockets) socket.destroy();
    // Before the fix each such connection stayed assigned to its half-sent request for good, until the pool was full.
    assert.ok(await waitFor(() => faulty.open === 0, 3000), `upstream connections still open: ${faulty.open}`);
    assert.ok(await waitFor(() => served.relay.inFlight === 0, 2000));
    await served.close();
    await faulty.close();
  });
}

test.run();
