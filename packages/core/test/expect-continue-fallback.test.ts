// `Expect: 100-continue` end to end (`server.on('checkContinue', relay.handle)`): the upstream may
// read the body without ever sending `100 Continue` (HTTP/1.0 servers, Python's http.server; RFC
// 9110 §10.1.1), and a client that waits for the 100 (node's http and http2 clients) would wait
// until timeouts.write. Once the request is upstream, the relay sends the client a 100 itself when
// neither a 100 nor a head came within 1 s (curl's expect timeout): the upload goes on. An upstream
// that refuses within that second still gets no body, and the client gets one 100 at most.
import http from 'node:http';
import http2 from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listenHttp2, memoryLogger, startUpstream, type Upstream } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { createRelay, http2Transport, httpTransport, type Relay, type Transport } from '../src/index.js';

/** What a client that waits for `100 Continue` before its body read, and when its 100 came (-1: never). */
interface Outcome {
  text: string;
  continuedAfter: number;
}

/** Sends a head with `Expect: 100-continue` over HTTP/1.1 and the body only after a `100`; resolves on close (at most `waitMs`). */
function expectContinue(port: number, path: string, body: string, waitMs = 4000): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    const outcome: Outcome = { text: '', continuedAfter: -1 };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      outcome.text += chunk;
      if (outcome.continuedAfter === -1 && outcome.text.startsWith('HTTP/1.1 100')) {
        outcome.continuedAfter = Date.now() - started;
        socket.write(body);
      }
    });
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(outcome);
    });
    socket.on('error', () => {});
    socket.write(`POST ${path} HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  });
}

/** An HTTP/1.1 upstream that takes `Expect: 100-continue` requests without ever sending 100: it reads the body and answers. */
async function silentUpstream(): Promise<Upstream> {
  const upstream = await startUpstream((_req, res, seen) => res.end(`got ${seen.body.length}`));
  // With a checkContinue listener node sends no 100 of its own.
  upstream.server.on('checkContinue', (req, res) => upstream.server.emit('request', req, res));
  return upstream;
}

/** A relay behind a node:http server that hands `Expect` requests to it (`checkContinue`), as the docs describe. */
async function serveExpecting(relay: Relay): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(relay.handle);
  server.on('checkContinue', relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await close(server);
      await relay.shutdown({ timeout: 500 });
    },
  };
}

/** The 100 came from the relay's fallback: after its 1 s wait, not at once, and long before the write timeout. */
function assertFallback(continuedAfter: number): void {
  assert.ok(continuedAfter >= 900, `100 Continue after ${continuedAfter} ms: the relay did not wait for the upstream's`);
  assert.ok(continuedAfter < 3500, `100 Continue after ${continuedAfter} ms`);
}

function countContinues(text: string): number {
  return text.split('HTTP/1.1 100 Continue\r\n').length - 1;
}

const http1Transports: Array<[string, () => Transport]> = [
  ['httpTransport', () => httpTransport()],
  ['gotTransport', () => gotTransport()],
];

for (const [name, transport] of http1Transports) {
  test(`${name}: an upstream that never sends 100 gets the body anyway: the relay sends the client 100 Continue after about 1 s, once`, async () => {
    const upstream = await silentUpstream();
    const served = await serveExpecting(createRelay({ targetBaseUrl: upstream.url, transport: transport(), logger: memoryLogger() }));
    try {
      const outcome = await expectContinue(served.port, '/upload', 'payload');
      assertFallback(outcome.continuedAfter);
      assert.match(outcome.text, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /);
      assert.match(outcome.text, /got 7$/);
      assert.is(countContinues(outcome.text), 1);
      assert.is(upstream.requests[0]!.headers.expect, '100-continue', 'the Expect went upstream');
      assert.is(upstream.requests[0]!.body.toString(), 'payload');
    } finally {
      await served.close();
      await upstream.close();
    }
  });
}

test('http2Transport: an h2c upstream that never sends 100 gets the body anyway: the relay sends the client 100 Continue after about 1 s', async () => {
  const expects: Array<string | undefined> = [];
  const server = http2.createServer((req, res) => {
    expects.push(req.headers.expect);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => res.end(`got ${Buffer.concat(chunks).length}`));
  });
  // node:http2 answers 100 itself unless the server has a checkContinue listener.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  const upstream = await listenHttp2(server);
  const served = await serveExpecting(createRelay({ targetBaseUrl: upstream.url, transport: http2Transport(), logger: memoryLogger() }));
  try {
    const outcome = await expectContinue(served.port, '/upload', 'payload');
    assertFallback(outcome.continuedAfter);
    assert.match(outcome.text, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /);
    assert.match(outcome.text, /\r\n\r\n(?:[0-9a-f]+\r\n)?got 7(?:\r\n0\r\n\r\n)?$/, outcome.text);
    assert.equal(expects, ['100-continue']);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('HTTP/2 front (checkContinue → relay.handle): a client waiting for 100 Continue gets it from the relay after about 1 s when the upstream never sends one', async () => {
  const upstream = await silentUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const front = http2.createServer(relay.handle);
  front.on('checkContinue', relay.handle);
  const listening = await listenHttp2(front);
  const session = http2.connect(listening.url);
  session.on('error', () => {});
  try {
    const started = Date.now();
    const outcome = await new Promise<{ continuedAfter: number; status: number; body: string }>((resolve) => {
      const result = { continuedAfter: -1, status: 0, body: '' };
      const stream = session.request({ ':method': 'POST', ':path': '/upload', expect: '100-continue', 'content-length': '7' }, { endStream: false });
      stream.on('continue', () => {
        result.continuedAfter = Date.now() - started;
        stream.end('payload');
      });
      stream.on('response', (headers) => (result.status = Number(headers[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (result.body += chunk));
      stream.on('error', () => {});
      const timer = setTimeout(() => stream.close(), 4000);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve(result);
      });
    });
    assertFallback(outcome.continuedAfter);
    assert.is(outcome.status, 200);
    assert.is(outcome.body, 'got 7');
    assert.is(upstream.requests[0]!.body.toString(), 'payload');
  } finally {
    session.destroy();
    await listening.close();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test("an upstream's refusal within the wait (401 after 200 ms, 413 at once) reaches the client without a 100, and no body is uploaded", async () => {
  const upstream = await startUpstream();
  const uploaded: number[] = [];
  upstream.server.on('checkContinue', (req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    res.on('finish', () => uploaded.push(bytes));
    if (req.url === '/too-large') {
      res.writeHead(413, { 'content-length': '9', connection: 'close' }).end('too large');
      return;
    }
    setTimeout(() => res.writeHead(401, { 'content-length': '6', connection: 'close' }).end('denied'), 200);
  });
  const served = await serveExpecting(createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() }));
  try {
    const denied = await expectContinue(served.port, '/deny', 'payload');
    assert.match(denied.text, /^HTTP\/1.1 401 /, denied.text);
    assert.match(denied.text, /denied$/);
    const tooLarge = await expectContinue(served.port, '/too-large', 'payload');
    assert.match(tooLarge.text, /^HTTP\/1.1 413 /, tooLarge.text);
    assert.is(denied.continuedAfter, -1, 'a 100 before the refusal: the client would have sent its body');
    assert.is(tooLarge.continuedAfter, -1);
    assert.not.match(denied.text + tooLarge.text, /100 Continue/);
    assert.equal(uploaded, [0, 0], 'the upstream read no body byte');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test("an upstream's own 100 within the wait is relayed at once, and one that comes after the relay's gives the client no second 100", async () => {
  const upstream = await startUpstream();
  upstream.server.on('checkContinue', (req, res) => {
    setTimeout(() => {
      res.writeContinue();
      upstream.server.emit('request', req, res);
    }, req.url === '/late' ? 1600 : 100);
  });
  const served = await serveExpecting(createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() }));
  try {
    const prompt = await expectContinue(served.port, '/prompt', 'payload');
    assert.ok(prompt.continuedAfter >= 0 && prompt.continuedAfter < 900, `the upstream's 100 after ${prompt.continuedAfter} ms`);
    assert.is(countContinues(prompt.text), 1, prompt.text);
    assert.match(prompt.text, /\r\n\r\nHTTP\/1.1 200 /);
    const late = await expectContinue(served.port, '/late', 'payload');
    assertFallback(late.continuedAfter);
    assert.is(countContinues(late.text), 1, late.text);
    assert.match(late.text, /\r\n\r\nHTTP\/1.1 200 /);
    assert.equal(upstream.requests.map((request) => request.body.toString()), ['payload', 'payload']);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
