import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { websocket } from '@relay/ws';
import { close, delay, fetchRaw, listen, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { concurrencyLimit, rateLimit } from '../src/index.js';

/** An upstream whose responses wait until the test releases them. */
async function heldUpstream() {
  const waiting: ServerResponse[] = [];
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('head ');
    waiting.push(res);
  });
  return { upstream, waiting, releaseAll: () => waiting.splice(0).forEach((res) => res.end('done')) };
}

test('in-flight requests: the third of max 2 gets 429 while two bodies are still streaming; a slot frees when a body ends', async () => {
  const { upstream, waiting, releaseAll } = await heldUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [concurrencyLimit({ max: 2 })] }));
  try {
    const first = [fetchRaw(served.url), fetchRaw(served.url)];
    assert.ok(await waitFor(() => waiting.length === 2, 10_000), 'both reached the upstream');
    const third = await fetchRaw(served.url);
    assert.is(third.status, 429);
    assert.is(third.headers['retry-after'], '1');
    assert.match(third.text, /too many requests in progress/);
    assert.ok(logger.lines.some((line) => line.message.startsWith('concurrency limit reached')));
    releaseAll();
    assert.equal((await Promise.all(first)).map((response) => response.text), ['head done', 'head done']);
    const fourth = fetchRaw(served.url);
    assert.ok(await waitFor(() => waiting.length === 1, 10_000), 'slots came back once the bodies ended');
    releaseAll();
    assert.is((await fourth).status, 200);
  } finally {
    releaseAll();
    await served.close();
    await upstream.close();
  }
});

test('a client that goes away mid-body frees its slot; so does a request whose upstream fails', async () => {
  const waiting: ServerResponse[] = [];
  const upstreamClosed: ServerResponse[] = [];
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/fail') {
      req.socket.destroy();
      return;
    }
    res.on('close', () => upstreamClosed.push(res));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('head ');
    waiting.push(res);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [concurrencyLimit({ max: 1, key: 'route' })] }));
  try {
    const gone = request(served.url, { agent: false });
    gone.on('response', (res) => res.once('data', () => gone.destroy()));
    gone.on('error', () => {});
    gone.end();
    assert.ok(await waitFor(() => upstreamClosed.length === 1, 10_000), 'the relay aborted the upstream when the client left');
    for (let i = 0; i < 3; i++) assert.is((await fetchRaw(`${served.url}/fail`)).status, 502, `failure ${i} got its 502, not a 429`);
    const next = fetchRaw(served.url);
    assert.ok(await waitFor(() => waiting.length === 2, 10_000), 'the slot is free');
    waiting[1]!.end('done');
    assert.is((await next).text, 'head done');
  } finally {
    for (const res of waiting) res.end();
    await served.close();
    await upstream.close();
  }
});

/** A real `ws` upstream; `refuse` answers handshakes with 403. */
async function wsUpstream(refuse = false) {
  const server = createServer();
  const wss = new WebSocketServer({ server, verifyClient: () => !refuse });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  const url = await listen(server);
  return {
    url,
    wss,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await close(server);
    },
  };
}

async function gateway(targetBaseUrl: string, stages: Stage[]): Promise<{ relay: Relay; url: string; close(): Promise<void> }> {
  const relay = createRelay({ targetBaseUrl, websocket: websocket(), stages });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const base = await listen(server);
  return {
    relay,
    url: base,
    close: async () => {
      await relay.shutdown({ timeout: 1000 });
      await close(server);
    },
  };
}

/** Opens a client; resolves with it once open, or with the refused handshake's status. */
function connect(url: string): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http:', 'ws:'));
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', reject);
    ws.on('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve(ws);
    });
  });
}

function closed(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.close();
  });
}

test('WebSocket sessions hold their slot until they close; HTTP requests count in the same table', async () => {
  const upstream = await wsUpstream();
  const relay = await gateway(upstream.url, [concurrencyLimit({ max: 2 })]);
  try {
    const a = await connect(relay.url);
    const b = await connect(relay.url);
    assert.instance(a, WebSocket);
    assert.instance(b, WebSocket);
    const echoed = new Promise((resolve) => (a as WebSocket).once('message', (data) => resolve(String(data))));
    (a as WebSocket).send('still relayed');
    assert.is(await echoed, 'still relayed');
    assert.is(await connect(relay.url), 429, 'a third session is refused while two are open');
    assert.is((await fetchRaw(relay.url)).status, 429, 'so is a plain request from the same client');
    await closed(a as WebSocket);
    // The relay sees the client's TCP close a moment after the client does: try a few times.
    let third: WebSocket | number = 0;
    for (let i = 0; i < 50 && !(third instanceof WebSocket); i++) {
      await delay(50);
      third = await connect(relay.url);
    }
    assert.instance(third, WebSocket, 'the slot came back when the session closed');
    await closed(third as WebSocket);
    await closed(b as WebSocket);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('a handshake the upstream refuses frees its slot; so does a 101 a stage outside replaces', async () => {
  const refusing = await wsUpstream(true);
  const relay = await gateway(refusing.url, [concurrencyLimit({ max: 1 })]);
  const accepting = await wsUpstream();
  const replacing: Stage = {
    name: 'replace-101',
    wrap: (next) =>
      async function replace101(request) {
        const response = await next(request);
        if (request.headers['x-replace'] === undefined) return response;
        return { status: 403, statusMessage: '', headers: { 'content-length': '0' }, body: null };
      },
  };
  const outer = await gateway(accepting.url, [replacing, concurrencyLimit({ max: 1 })]);
  try {
    for (let i = 0; i < 3; i++) assert.is(await connect(relay.url), 401, `refused by the upstream (${i}), never by the limit`);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(outer.url.replace('http:', 'ws:'), { headers: { 'x-replace': '1' } });
        ws.on('unexpected-response', (_req, res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('error', reject);
      });
      statuses.push(status);
    }
    assert.equal(statuses, [403, 403, 403], 'each replaced 101 gave its slot back');
    const open = await connect(outer.url);
    assert.instance(open, WebSocket);
    await closed(open as WebSocket);
  } finally {
    await relay.close();
    await outer.close();
    await refusing.close();
    await accepting.close();
  }
});

test('a rate limit applies to WebSocket handshakes too: 429 with Retry-After, headers on the 101', async () => {
  const upstream = await wsUpstream();
  const relay = await gateway(upstream.url, [rateLimit({ name: 'ws', points: 1, duration: 60_000 })]);
  try {
    const seen = new Promise<IncomingMessage>((resolve) => {
      const ws = new WebSocket(relay.url.replace('http:', 'ws:'));
      ws.on('upgrade', (res) => resolve(res));
      ws.on('open', () => ws.close());
      ws.on('error', () => {});
    });
    assert.is((await seen).headers.ratelimit, '"ws";r=0;t=60');
    assert.is(await connect(relay.url), 429);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

/** A stage that answers by itself (an auth check's 204, a health check) as a JS user may write it: `answer` as is. */
function answering(answer: () => unknown): Stage {
  return { name: 'answering', wrap: () => answer as never };
}

/** Three requests one after another through a relay with `stages`: the statuses, and the same without the limit. */
async function threeInTurn(answer: () => unknown): Promise<{ limited: number[]; bare: number[] }> {
  const upstream = await startUpstream();
  const bare = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [answering(answer)] }));
  const limited = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [concurrencyLimit({ max: 1, key: 'route' }), answering(answer)] }));
  try {
    const statuses = { limited: [] as number[], bare: [] as number[] };
    for (let i = 0; i < 3; i++) statuses.limited.push((await fetchRaw(limited.url)).status);
    for (let i = 0; i < 3; i++) statuses.bare.push((await fetchRaw(bare.url)).status);
    return statuses;
  } finally {
    await bare.close();
    await limited.close();
    await upstream.close();
  }
}

// max 1, one request at a time: a 429 means an earlier request's slot was never given back.
test('a stage inside answering with its body left out: served as core serves it (no body), and the slot comes back', async () => {
  const statuses = await threeInTurn(async () => ({ status: 204, statusMessage: '', headers: {} }));
  assert.equal(statuses.bare, [204, 204, 204], 'core sends a body left out as no body');
  assert.equal(statuses.limited, [204, 204, 204], 'never a 500, never a 429');
});

test('a stage inside answering a body core refuses (a string), or no response at all: 500 as without the limit, and the slot comes back', async () => {
  for (const answer of [async () => ({ status: 200, statusMessage: '', headers: {}, body: 'hello' }), async () => null]) {
    const statuses = await threeInTurn(answer);
    assert.equal(statuses.bare, [500, 500, 500]);
    assert.equal(statuses.limited, [500, 500, 500], 'each request ended: its slot is free again');
  }
});

test('a stage inside answering without a promise: served, and the slot comes back', async () => {
  const statuses = await threeInTurn(() => ({ status: 204, statusMessage: '', headers: {}, body: null }));
  assert.equal(statuses.bare, [204, 204, 204]);
  assert.equal(statuses.limited, [204, 204, 204]);
});

test('concurrencyLimit options are checked', () => {
  assert.throws(() => concurrencyLimit({} as never), /concurrencyLimit: max must be a number/);
  assert.throws(() => concurrencyLimit({ max: 0 }), /concurrencyLimit: max must be a finite number > 0/);
  assert.throws(() => concurrencyLimit({ max: 1, kye: 'route' } as never), /unknown option "kye" \(did you mean "key"\?/);
});

test.run();
