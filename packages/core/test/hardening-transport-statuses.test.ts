// Issue 13, item 14 (HTTP side): no `500 OK` status line and no connection closed without an
// answer when the relay turns a failure into an error response.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { h2Request, memoryLogger, sendRaw, serveRelay, startFaultyUpstream } from '@relay/testkit';
import { createRelay, type Stage } from '../src/index.js';

/** A stage that answers by itself with `status`, `statusMessage` and `headers`. */
function answering(statusMessage: string, headers: Record<string, string>): Stage {
  return {
    name: 'answering',
    wrap: () =>
      async function answer() {
        return { status: 200, statusMessage, headers, body: null };
      },
  };
}

const request = 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n';

test('a response head that cannot be written gives "500 Internal Server Error", never "500 OK"', async () => {
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: 'http://127.0.0.1:9', stages: [answering('OK', { 'x-bad': 'a\u0000b' })], logger }));
  const answer = await sendRaw(served.port, request);
  assert.match(answer, /^HTTP\/1.1 500 Internal Server Error\r\n/, answer.split('\r\n')[0]);
  assert.ok(logger.lines.some((line) => line.level === 'error' && /invalid response head/.test(String(line.fields.error))), 'logged');
  assert.is(served.relay.inFlight, 0);
  await served.close();
});

test('a stage header value with CR/LF: 500 and the same log line on an HTTP/2 front as on HTTP/1.1, not a field the client drops', async () => {
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9', stages: [answering('OK', { 'x-bad': 'a\r\nx-injected: 1', 'x-fine': 'yes' })], logger });
  const server = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const answer = await h2Request(session, { ':path': '/x' });
  assert.is(answer.headers[':status'], 500);
  assert.is(answer.headers['x-injected'], undefined);
  assert.is(answer.headers['x-fine'], undefined, 'no part of the head that failed');
  assert.ok(logger.lines.some((line) => line.level === 'error' && /invalid response head/.test(String(line.fields.error))), 'logged');
  session.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await relay.shutdown();
});

test('an invalid reason phrase gives a 500 answer, not a connection closed without one', async () => {
  const served = await serveRelay(createRelay({ targetBaseUrl: 'http://127.0.0.1:9', stages: [answering('Fine\r\nX-Injected: 1', {})] }));
  const answer = await sendRaw(served.port, request);
  assert.match(answer, /^HTTP\/1.1 500 Internal Server Error\r\n/, JSON.stringify(answer.slice(0, 60)));
  assert.not.match(answer, /X-Injected/i);
  await served.close();
});

test('an upstream 101 to a plain request is a 502 with a log line that names it, not a relayed 101 or a 500', async () => {
  const faulty = await startFaultyUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: faulty.url, logger }));
  for (const path of ['/bare-101', '/switching-protocols']) {
    const answer = await sendRaw(served.port, request.replace('/x', path));
    assert.match(answer, /^HTTP\/1.1 502 Bad Gateway\r\n/, `${path}: ${answer.split('\r\n')[0]}`);
  }
  const lines = logger.lines.filter((line) => line.level === 'warn' && /101 Switching Protocols/.test(String(line.fields.error)));
  assert.is(lines.length, 2, JSON.stringify(logger.lines));
  assert.is(served.relay.inFlight, 0);
  await served.close();
  await faulty.close();
});

test.run();
