// gotTransport's failures map to the same RelayError codes and statuses as httpTransport's, with
// got `beforeError` hooks in place (they wrap, rename or replace got's error), and an upstream
// answer httpTransport relays (a whole response followed by stray bytes) is relayed too.
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, listen, memoryLogger, serveRelay, startFaultyUpstream, startUpstream, waitFor, type MemoryLogger } from '@relay/testkit';
import { gotTransport } from '@relay/core/got';
import { createRelay, httpTransport, type Transport } from '../src/index.js';

type Hook = (error: Error) => Error;
const gotWith = (hook: Hook) => gotTransport({ hooks: { beforeError: [hook as never] } });
const warned = (logger: MemoryLogger, pattern: RegExp) => logger.lines.some((line) => line.level === 'warn' && pattern.test(`${line.message} ${String(line.fields.error)}`));

async function refusedThrough(transport: Transport) {
  const port = await closedPort();
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, transport, logger }));
  try {
    return { response: await fetchRaw(`${served.url}/login`), logger };
  } finally {
    await served.close();
  }
}

test("a beforeError hook that wraps got's error (new Error with cause) leaves a refused connection a 502 ERR_UPSTREAM_UNREACHABLE, as httpTransport answers, and its message is logged", async () => {
  const http = await refusedThrough(httpTransport());
  const got = await refusedThrough(gotWith((error) => new Error(`auth service: ${error.message}`, { cause: error })));
  assert.is(http.response.status, 502);
  assert.match(http.response.text, /ERR_UPSTREAM_UNREACHABLE/);
  assert.is(got.response.status, 502, `got transport answered: ${got.response.text.trim()}`);
  assert.match(got.response.text, /ERR_UPSTREAM_UNREACHABLE/);
  assert.ok(warned(got.logger, /auth service: connect ECONNREFUSED/), JSON.stringify(got.logger.lines));
});

test('a beforeError hook that replaces the error with one of its own (no cause) still leaves a refused connection a 502 ERR_UPSTREAM_UNREACHABLE', async () => {
  const got = await refusedThrough(gotWith(() => new Error('auth service is down')));
  assert.is(got.response.status, 502, `got transport answered: ${got.response.text.trim()}`);
  assert.match(got.response.text, /ERR_UPSTREAM_UNREACHABLE/);
  assert.ok(warned(got.logger, /auth service is down/), JSON.stringify(got.logger.lines));
});

test("a beforeError hook that renames the error (got's documented pattern) leaves a read timeout a 504 ERR_READ_TIMEOUT, not ERR_CONNECT_TIMEOUT", async () => {
  const upstream = await startUpstream((_req: IncomingMessage, _res: ServerResponse) => {
    // never answers
  });
  const rename: Hook = (error) => {
    error.name = 'AuthServiceError';
    return error;
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 200 }, transport: gotWith(rename), logger: memoryLogger() }));
  try {
    const response = await fetchRaw(`${served.url}/slow`);
    assert.is(response.status, 504);
    assert.match(response.text, /ERR_READ_TIMEOUT/, `got transport answered: ${response.text.trim()}`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('with a beforeError hook that wraps the error, a keep-alive connection closed as it is reused is still replaced: the GET is sent again (200)', async () => {
  const faulty = await startFaultyUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: faulty.url, transport: gotWith((error) => new Error(`wrapped: ${error.message}`, { cause: error })), logger: memoryLogger() }));
  try {
    assert.is((await fetchRaw(`${served.url}/close-on-reuse/1`)).text, 'ok');
    const acceptedBefore = faulty.accepted;
    const second = await fetchRaw(`${served.url}/close-on-reuse/2`);
    assert.equal([second.status, second.text], [200, 'ok'], `got transport answered: ${second.text.trim()}`);
    assert.is(faulty.accepted, acceptedBefore + 1, 'one new connection');
  } finally {
    await served.close();
    await faulty.close();
  }
});

/** A TCP upstream that answers every request with `answer`, in one write (one segment on loopback). */
async function rawUpstream(answer: string): Promise<{ url: string; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: TcpServer = createTcpServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', () => socket.write(answer));
  });
  const url = await listen(server);
  return {
    url,
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const trailing: Array<[string, string]> = [
  ['content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokGARBAGE\r\n\r\n'],
  ['chunked', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nGARBAGE\r\n\r\n'],
];

for (const [framing, answer] of trailing) {
  test(`a whole ${framing} response followed by stray bytes in the same segment is relayed (200, complete) by gotTransport as by httpTransport, logged, and its connection not reused`, async () => {
    const upstream = await rawUpstream(answer);
    const httpLogger = memoryLogger();
    const gotLogger = memoryLogger();
    const viaHttp = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: httpTransport(), logger: httpLogger }));
    const viaGot = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: gotTransport(), logger: gotLogger }));
    try {
      const http = await fetchRaw(`${viaHttp.url}/x`);
      assert.equal([http.status, http.complete, http.text], [200, true, 'ok']);
      const before = upstream.accepted();
      const got = await fetchRaw(`${viaGot.url}/x`);
      assert.equal([got.status, got.complete, got.text], [http.status, http.complete, http.text]);
      assert.ok(await waitFor(() => warned(gotLogger, /after a complete response/)), JSON.stringify(gotLogger.lines));
      const again = await fetchRaw(`${viaGot.url}/x`);
      assert.equal([again.status, again.text], [200, 'ok']);
      assert.is(upstream.accepted(), before + 2, 'each response went over a connection of its own');
    } finally {
      await viaGot.close();
      await viaHttp.close();
      await upstream.close();
    }
  });
}

test('with a beforeError hook in place, a whole response followed by stray bytes is still relayed', async () => {
  const upstream = await rawUpstream(trailing[0]![1]);
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: gotWith((error) => new Error(`wrapped: ${error.message}`, { cause: error })), logger: memoryLogger() }));
  try {
    const response = await fetchRaw(`${served.url}/x`);
    assert.equal([response.status, response.complete, response.text], [200, true, 'ok']);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a body cut by bytes that are not HTTP, in the same segment as the head, is still a 502 ERR_UPSTREAM_PROTOCOL', async () => {
  const upstream = await rawUpstream('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nZZ\r\n');
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: gotTransport(), logger: memoryLogger() }));
  try {
    const response = await fetchRaw(`${served.url}/x`);
    assert.is(response.status, 502);
    assert.match(response.text, /ERR_UPSTREAM_PROTOCOL/);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
