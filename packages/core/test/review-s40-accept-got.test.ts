// Review s40 (acceptance, issue 7): gotTransport's errors must map to the same RelayError codes
// and statuses as httpTransport, with the hooks the transport accepts (beforeError) in place, and
// for an upstream answer httpTransport relays.
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, listen, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { gotTransport } from '@relay/core/got';
import { createRelay, httpTransport } from '@relay/core';

test('a beforeError hook that wraps got\'s error (new Error with cause) leaves an unreachable upstream a 502 ERR_UPSTREAM_UNREACHABLE, as httpTransport answers', async () => {
  const port = await closedPort();
  const wrap = (error: Error) => new Error(`auth service: ${error.message}`, { cause: error });
  const expected = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, transport: httpTransport(), logger: memoryLogger() }));
  const served = await serveRelay(
    createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, transport: gotTransport({ hooks: { beforeError: [wrap as never] } }), logger: memoryLogger() }),
  );
  try {
    const http = await fetchRaw(`${expected.url}/login`);
    const got = await fetchRaw(`${served.url}/login`);
    assert.is(http.status, 502);
    assert.match(http.text, /ERR_UPSTREAM_UNREACHABLE/);
    assert.is(got.status, 502, `got transport answered: ${got.text.trim()}`);
    assert.match(got.text, /ERR_UPSTREAM_UNREACHABLE/);
  } finally {
    await served.close();
    await expected.close();
  }
});

test("a beforeError hook that renames the error (got's documented pattern) leaves a read timeout a 504 ERR_READ_TIMEOUT, not ERR_CONNECT_TIMEOUT", async () => {
  const upstream = await startUpstream((_req: IncomingMessage, _res: ServerResponse) => {
    // never answers
  });
  const rename = (error: Error) => {
    error.name = 'AuthServiceError';
    return error;
  };
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, timeout: { read: 200 }, transport: gotTransport({ hooks: { beforeError: [rename as never] } }), logger: memoryLogger() }),
  );
  try {
    const response = await fetchRaw(`${served.url}/slow`);
    assert.is(response.status, 504);
    assert.match(response.text, /ERR_READ_TIMEOUT/, `got transport answered: ${response.text.trim()}`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a whole response followed by stray bytes in the same segment is relayed (200, complete) by gotTransport as by httpTransport, not turned into a 502', async () => {
  const sockets = new Set<Socket>();
  const raw = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokGARBAGE\r\n\r\n'));
  });
  const url = await listen(raw);
  const viaHttp = await serveRelay(createRelay({ targetBaseUrl: url, transport: httpTransport(), logger: memoryLogger() }));
  const viaGot = await serveRelay(createRelay({ targetBaseUrl: url, transport: gotTransport(), logger: memoryLogger() }));
  try {
    const http = await fetchRaw(`${viaHttp.url}/x`);
    const got = await fetchRaw(`${viaGot.url}/x`);
    assert.equal([http.status, http.complete, http.text], [200, true, 'ok']);
    assert.equal([got.status, got.complete, got.text.trim()], [http.status, http.complete, http.text]);
  } finally {
    await viaGot.close();
    await viaHttp.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  }
});

test.run();
