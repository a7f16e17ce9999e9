// Review s37b (core, commit 2fd5642): the connection after the relay's own refusals. Reviewed
// what review-s37-attack did not: a refused request without a body keeps its keep-alive
// connection and the requests pipelined behind it are answered; a 413 (ERR_BODY_TOO_LARGE, as
// bodyLimit() throws) while a large upload is still coming reaches the client before the close.
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serveRelay, startUpstream } from '@relay/testkit';
import { createRelay, RelayError, type Stage } from '../src/index.js';

const statusLines = (text: string) => text.match(/HTTP\/1\.[01] \d{3}/g) ?? [];

/** Writes `payload`, reads until `count` answers came or `ms` passed, and says whether the server closed. */
function exchange(port: number, payload: string, count: number, ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(finish, ms);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (statusLines(text).length >= count && /\r\n\r\n[^]*$/.test(text)) setTimeout(finish, 300);
    });
    socket.on('error', () => {});
    socket.on('end', () => (closed = true));
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(payload);
  });
}

test('a refused GET without a body (400 bad path) keeps the connection alive, and the GET pipelined behind it is answered 200', async () => {
  // RFC 9112 §9.3.2: pipelined requests are answered in order; nginx keeps the connection after a
  // 400 only when it closes for framing reasons, and the commit closes only "while the request
  // body is still coming": a bodiless refusal has nothing left to read.
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  try {
    const { text, closed } = await exchange(served.port, 'GET /a/../x HTTP/1.1\r\nHost: gw\r\n\r\nGET /ok HTTP/1.1\r\nHost: gw\r\n\r\n', 2);
    assert.equal(statusLines(text), ['HTTP/1.1 400', 'HTTP/1.1 200'], text);
    assert.not.match(text.split('\r\n\r\n')[0]!.toLowerCase(), /connection: close/);
    assert.not.ok(closed, 'the server closed a connection with nothing left to read');
    assert.is(upstream.requests.length, 1);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a refused POST whose small body arrived whole (400 bad path) is answered and the GET pipelined behind it is not lost without an answer', async () => {
  // Either the relay keeps the connection (the body is read) and answers the second request, or
  // it closes with Connection: close; it must never answer 400 keep-alive and then drop the next.
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  try {
    const { text, closed } = await exchange(served.port, 'POST /a/../x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhelloGET /ok HTTP/1.1\r\nHost: gw\r\n\r\n', 2);
    const lines = statusLines(text);
    assert.is(lines[0], 'HTTP/1.1 400', text);
    if (lines.length === 1) {
      assert.match(text.toLowerCase(), /connection: close/);
      assert.ok(closed);
    } else assert.equal(lines, ['HTTP/1.1 400', 'HTTP/1.1 200']);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a 413 (ERR_BODY_TOO_LARGE, as bodyLimit() throws) while a 4 MiB upload is still being written reaches the client with Connection: close, not a reset that loses it', async () => {
  // RFC 9112 §9.6: a server closing while the client still sends should close its write side
  // first and keep reading for a while (nginx lingering_close), else the client's TCP stack may
  // drop the response on the RST. nginx answers 413 this way (client_max_body_size).
  const upstream = await startUpstream();
  const refuse: Stage = {
    name: 'refuse-large',
    wrap: (next) => async (request) => {
      if (Number(request.headers['content-length']) > 1024) throw new RelayError('ERR_BODY_TOO_LARGE', 'over 1024 bytes');
      return next(request);
    },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [refuse] }));
  try {
    const results: string[] = [];
    for (let round = 0; round < 3; round++) {
      const result = await new Promise<string>((resolve) => {
        const socket: Socket = connect(served.port, '127.0.0.1');
        let text = '';
        const chunk = Buffer.alloc(64 * 1024, 'b');
        let sent = 0;
        const pump = () => {
          while (sent < 64 && !socket.destroyed) {
            sent++;
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        const timer = setTimeout(() => socket.destroy(), 4000);
        socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
        socket.on('error', (error: NodeJS.ErrnoException) => (text ||= `error ${error.code}`));
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(text);
        });
        socket.write(`POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${64 * 64 * 1024}\r\n\r\n`);
        pump();
      });
      results.push(statusLines(result)[0] ?? result.slice(0, 40));
    }
    assert.equal(results, ['HTTP/1.1 413', 'HTTP/1.1 413', 'HTTP/1.1 413']);
    assert.is(upstream.requests.length, 0);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
