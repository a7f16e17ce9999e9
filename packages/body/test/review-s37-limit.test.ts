// Review s37 (issue 20, bodies: bodyLimit): the limit over an HTTP/2 front (declared length and DATA frames with no
// length), and a chunked HTTP/1.1 body with trailer fields that crosses the limit. Regression coverage: these pass.
// Black-box: real upstreams on 127.0.0.1, real node:http2 and raw HTTP/1.1 clients.
import http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { listenHttp2, sendRaw, serveRelay } from '@relay/testkit';
import { bodyLimit } from '../src/index.js';
import { countingUpstream } from './helpers.js';

/** POSTs `chunks` chunks of `size` bytes on `session`, 5 ms apart; resolves with the status and body received. */
function postH2(session: http2.ClientHttp2Session, headers: Record<string, string>, chunks: number, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream', ...headers });
    let status = 0;
    let body = '';
    stream.on('response', (head) => (status = Number(head[':status'])));
    stream.on('data', (part: Buffer) => (body += part.toString()));
    stream.on('close', () => resolve({ status, body }));
    stream.on('error', () => {});
    let sent = 0;
    const writeNext = (): void => {
      if (stream.destroyed || stream.writableEnded) return;
      if (sent++ === chunks) {
        stream.end();
        return;
      }
      stream.write(Buffer.alloc(size, 0x61));
      setTimeout(writeNext, 5);
    };
    writeNext();
  });
}

test('bodyLimit (regression): over an HTTP/2 front, a declared and an undeclared body over the limit get 413; one under it passes', async () => {
  // Issue 20: "413 for declared and for chunked over-limit bodies with the upstream never seeing a full body". An
  // HTTP/2 body without content-length is the HTTP/2 form of a chunked one (RFC 9113 §8.1.1).
  const { upstream, seen } = await countingUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 1000 })] });
  await relay.startup();
  const front = await listenHttp2(http2.createServer(relay.handle));
  const session = http2.connect(front.url);
  session.on('error', () => {});
  try {
    const declared = await postH2(session, { 'content-length': '5000' }, 5, 1000);
    assert.is(declared.status, 413);
    assert.match(declared.body, /ERR_BODY_TOO_LARGE/);
    assert.is(seen.length, 0, 'the upstream was contacted for a declared length over the limit');
    const counted = await postH2(session, {}, 5, 1000);
    assert.is(counted.status, 413);
    assert.is(seen.length, 1);
    assert.not.ok(seen[0]!.ended, 'the upstream saw the whole body');
    assert.ok(seen[0]!.bytes <= 1000, `the upstream got ${seen[0]!.bytes} bytes`);
    const under = await postH2(session, {}, 1, 600);
    assert.is(under.status, 200);
    assert.equal(JSON.parse(under.body), { bytes: 600 });
  } finally {
    session.destroy();
    await front.close();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test('bodyLimit (regression): a chunked body with trailer fields that crosses the limit gets 413 and Connection: close', async () => {
  // Issue 20 / nginx client_max_body_size: the count is of the body's bytes; trailers do not let it past.
  const { upstream, seen } = await countingUpstream();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 8 })] }));
  try {
    const raw = await sendRaw(
      relay.port,
      'POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\n\r\n' +
        '5\r\nhello\r\n6\r\n world\r\n0\r\nx-digest: sha-256=abc\r\n\r\n',
      3000,
    );
    assert.match(raw, /^HTTP\/1\.1 413/);
    assert.match(raw, /\r\nconnection: close\r\n/i);
    assert.ok(seen.every((body) => !body.ended), 'the upstream received the whole body');
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
