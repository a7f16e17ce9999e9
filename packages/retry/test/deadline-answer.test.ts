// retry()'s `deadline` cuts the attempt in flight, never the client (`AttemptBound`): a stage outside
// retry() that catches the 504 and answers itself (docs/error-handling.md, "Answering errors your own way")
// gets its answer to the client, over HTTP/1.1 and HTTP/2, for the retry loop and the send-once path; with no
// such stage the client gets the 504 ERR_DEADLINE. An attempt still in an inner stage when the deadline passes
// is cut when it reaches its transport, so it never goes upstream; and the cut does not outlive the run.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, fetchRaw, h2Request, listen, listenHttp2, serveRelay } from '@relay/testkit';
import { createRelay, http2Transport, toRelayError, type ProxyRequest, type Stage, type Transport } from '@relay/core';
import { gotTransport } from '@relay/core/got';
import { undiciTransport } from '@relay/core/undici';
import { retry } from '../src/index.js';

/** Answers any 5xx failure with a stale copy (the maintenance pattern of docs/error-handling.md, for timeouts too). */
function serveStale(): Stage {
  return {
    name: 'serve-stale',
    wrap: (next) =>
      async function serveStaleStage(request) {
        try {
          return await next(request);
        } catch (error) {
          const relayError = toRelayError(error);
          if (relayError.status < 500) throw relayError;
          return { status: 200, statusMessage: '', headers: { 'content-type': 'text/plain', 'content-length': '5', 'x-stale': relayError.code }, body: Readable.from(['stale']) };
        }
      },
  };
}

/** A real client bounded in time: the status and body, or what went wrong. */
async function get(url: string, init: RequestInit = {}): Promise<string> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(3000) });
    return `${response.status} ${response.headers.get('x-stale')} ${await response.text()}`;
  } catch (error) {
    return `no answer: ${(error as Error).name}`;
  }
}

test('a stage outside retry() that answers the deadline\'s 504 itself gets its answer to the client (GET retried, POST sent once)', async () => {
  const silent = createServer(() => {});
  const url = await listen(silent);
  // Control: the same stage answering the core's own read timeout (504 ERR_READ_TIMEOUT) reaches the client.
  const plain = await serveRelay(createRelay({ targetBaseUrl: url, timeout: { read: 200 }, stages: [serveStale()] }));
  const withDeadline = await serveRelay(
    createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, stages: [serveStale(), retry({ maxRetries: 1, deadline: 300 })] }),
  );
  try {
    assert.is(await get(`${plain.url}/items`), '200 ERR_READ_TIMEOUT stale', 'control: the core timeout is answered by the stage');
    assert.is(await get(`${withDeadline.url}/items`), '200 ERR_DEADLINE stale', 'GET: the stage\'s answer to ERR_DEADLINE reaches the client');
    assert.is(await get(`${withDeadline.url}/orders`, { method: 'POST', body: 'a' }), '200 ERR_DEADLINE stale', 'POST (sent once, deadline only)');
  } finally {
    await plain.close();
    await withDeadline.close();
    silent.closeAllConnections();
    await close(silent);
  }
});

test('over HTTP/2 too: the stage\'s answer reaches the client, and without the stage the client gets 504 ERR_DEADLINE', async () => {
  const silent = createServer(() => {});
  const url = await listen(silent);
  const answered = createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, stages: [serveStale(), retry({ maxRetries: 1, deadline: 300 })] });
  const bare = createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, stages: [retry({ maxRetries: 1, deadline: 300 })] });
  const answeredFront = await listenHttp2(http2.createServer(answered.handle));
  const bareFront = await listenHttp2(http2.createServer(bare.handle));
  const answeredSession = http2.connect(answeredFront.url);
  const bareSession = http2.connect(bareFront.url);
  try {
    for (const [method, path] of [['GET', '/items'], ['POST', '/orders']] as const) {
      const stale = await within(h2Request(answeredSession, { ':method': method, ':path': path }, method === 'POST' ? 'a' : undefined));
      assert.is(`${String(stale.headers[':status'])} ${String(stale.headers['x-stale'])} ${stale.body}`, '200 ERR_DEADLINE stale', `${method}: the stage's answer`);
      const plain = await within(h2Request(bareSession, { ':method': method, ':path': path }, method === 'POST' ? 'a' : undefined));
      assert.is(plain.headers[':status'], 504, `${method}: the relay's own answer`);
      assert.match(plain.body, /ERR_DEADLINE/);
    }
  } finally {
    answeredSession.destroy();
    bareSession.destroy();
    await answeredFront.close();
    await bareFront.close();
    await answered.shutdown();
    await bare.shutdown();
    silent.closeAllConnections();
    await close(silent);
  }
});

test('the client is still there for the stages outside: one that tries again after ERR_DEADLINE gets the upstream\'s answer', async () => {
  let requests = 0;
  const upstream = createServer((_req, res) => {
    requests++;
    if (requests > 1) res.end('second try'); // the first hangs
  });
  const url = await listen(upstream);
  const seen: string[] = [];
  const tryAgain: Stage = {
    name: 'try-again',
    wrap: (next) =>
      async function tryAgainStage(request) {
        try {
          return await next(request);
        } catch (error) {
          seen.push(`${toRelayError(error).code} aborted=${String(request.client.aborted)}`);
          return next(request);
        }
      },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, stages: [tryAgain, retry({ maxRetries: 1, deadline: 300 })] }));
  try {
    const response = await within(fetchRaw(`${served.url}/items`));
    assert.is(`${response.status} ${response.text}`, '200 second try', 'the second run is not cut by the first one\'s deadline');
    assert.equal(seen, ['ERR_DEADLINE aborted=false']);
    assert.is(requests, 2);
  } finally {
    await served.close();
    upstream.closeAllConnections();
    await close(upstream);
  }
});

/** An upstream over HTTP/1.1 or h2c (for http2Transport) that counts requests: 503 to the first, 200 after. */
async function countingUpstream(h2: boolean): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const handler = (_req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse): void => {
    requests++;
    res.statusCode = requests === 1 ? 503 : 200;
    res.end('upstream');
  };
  if (h2) {
    const server = await listenHttp2(http2.createServer(handler));
    return { url: server.url, requests: () => requests, close: () => server.close() };
  }
  const server = createServer(handler);
  const url = await listen(server);
  return { url, requests: () => requests, close: () => { server.closeAllConnections(); return close(server); } };
}

/** A stage inside retry() that holds attempt number `slowAttempt` for `ms` before passing it on (a balancer's slot queue, a token fetch). */
function holdAttempt(slowAttempt: number, ms: number): Stage {
  return {
    name: 'hold-attempt',
    wrap: (next) =>
      async function holdAttemptStage(request: ProxyRequest) {
        if (request.attempt === slowAttempt) await delay(ms);
        return next(request);
      },
  };
}

const transports: Array<[string, () => Transport | undefined]> = [
  ['http', () => undefined],
  ['got', () => gotTransport()],
  ['undici', () => undiciTransport()],
  ['http2', () => http2Transport()],
];

for (const [name, transport] of transports) {
  test(`${name}: an attempt still in an inner stage when the deadline passes never goes upstream; the client gets 504 at the deadline`, async () => {
    const upstream = await countingUpstream(name === 'http2');
    // Attempt 1 is held (the first request of the run); then attempt 2, after a 503 retried past.
    for (const slowAttempt of [1, 2]) {
      const sentBefore = upstream.requests();
      const relay = createRelay({
        targetBaseUrl: upstream.url,
        transport: transport(),
        stages: [retry({ maxRetries: 1, backoffFactor: 10, deadline: 300 }), holdAttempt(slowAttempt, 700)],
      });
      const served = await serveRelay(relay);
      try {
        const started = performance.now();
        const response = await within(fetchRaw(`${served.url}/items`));
        const elapsed = performance.now() - started;
        assert.is(response.status, 504, `attempt ${slowAttempt} held: ${response.status} ${response.text}`);
        assert.match(response.text, /ERR_DEADLINE/);
        assert.ok(elapsed < 650, `answered at the deadline, not after the inner stage: ${Math.round(elapsed)} ms`);
        await delay(800); // the held attempt reaches the transport meanwhile
        assert.is(upstream.requests() - sentBefore, slowAttempt - 1, `attempt ${slowAttempt} held: only the attempts before it went upstream`);
      } finally {
        await served.close();
      }
    }
    await upstream.close();
  });
}

/** A promise bounded in time, so a client left without an answer fails the test instead of hanging it. */
function within<T>(promise: Promise<T>, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(reject, ms, new Error(`no answer within ${ms} ms`))));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

test.run();
