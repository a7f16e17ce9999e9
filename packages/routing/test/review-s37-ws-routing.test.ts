// Review s37 (@relay/routing with @relay/ws, issue 22): http-proxy-middleware's cases for upgrades
// and routing — `router` choosing the target of a WebSocket upgrade (by path or by host),
// `pathRewrite` as an object with an empty replacement (`{ '^/api': '' }`) and as a function on a
// handshake, a `when` on a handshake header — with real `ws` servers and clients, both modes.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { close, listen } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '@relay/ws';
import { rewritePath, router, routes, when } from '../src/index.js';

interface Upstream {
  url: string;
  seen: IncomingMessage[];
  close(): Promise<void>;
}

async function startUpstream(name: string): Promise<Upstream> {
  const server = createServer((req, res) => res.end(`${name} http ${req.url}`));
  const wss = new WebSocketServer({ server });
  const seen: IncomingMessage[] = [];
  wss.on('connection', (socket, req) => {
    seen.push(req);
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : `${name}: ${String(data)}`, { binary: isBinary }));
    socket.send(`${name} ${req.url}`);
  });
  const url = await listen(server);
  return {
    url,
    seen,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await close(server);
    },
  };
}

async function serve(relay: Relay): Promise<{ base: string; close(): Promise<void> }> {
  await relay.startup();
  const front: Server = createServer(relay.handle);
  front.on('upgrade', relay.upgrade);
  const base = (await listen(front)).replace('http:', 'ws:');
  return {
    base,
    close: async () => {
      await relay.shutdown({ timeout: 1000 });
      await close(front);
    },
  };
}

/** Opens a client; resolves with its first message, or `unexpected <status>` for a refused handshake. */
function firstMessage(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const client = new WebSocket(url, { headers });
    client.on('error', (error) => resolve(`error ${error.message}`));
    client.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(`unexpected ${res.statusCode}`);
      client.terminate();
    });
    client.on('message', (data) => {
      resolve(String(data));
      client.close(1000);
    });
  });
}

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onUpstreamMessage: () => undefined }],
];

function tagHandshake(name: string, value: string): Stage {
  return {
    name: 'tag',
    wrap: (next) =>
      function tagStage(request) {
        return next({ ...request, headers: { ...request.headers, [name]: value } });
      },
  };
}

for (const [mode, options] of modes) {
  // HPM recipes/router.md: `router: { '/rest': 'http://localhost:6004' }` routes an upgrade by path;
  // Relay's router() returns a name from its allow-list. The chosen target's base path prefixes the
  // path, the query is kept, Host is the chosen target's (README, router()).
  test(`${mode}: router() sends an upgrade to the target chosen by path, under that target's base path, with its Host`, async () => {
    const main = await startUpstream('main');
    const chat = await startUpstream('chat');
    const relay = createRelay({
      targetBaseUrl: main.url,
      websocket: websocket(options),
      stages: [router({ targets: { chat: `${chat.url}/v2` }, choose: (request) => (request.path.startsWith('/chat') ? 'chat' : undefined) })],
    });
    const front = await serve(relay);
    try {
      assert.is(await firstMessage(`${front.base}/chat/room?id=7&b=%zz&id=8`), 'chat /v2/chat/room?id=7&b=%zz&id=8');
      assert.is(chat.seen[0]!.headers.host, new URL(chat.url).host);
      assert.is(await firstMessage(`${front.base}/feed`), 'main /feed');
      assert.is(main.seen[0]!.headers.host, new URL(main.url).host);
    } finally {
      await front.close();
      await main.close();
      await chat.close();
    }
  });

  // HPM router by host (`'integration.localhost:3000': 'http://localhost:8000'`): chosen from the
  // client's Host inside routes()/when({ host }).
  test(`${mode}: routes() by host: an upgrade for *.chat.example goes to the chat target; another host gets the relay's`, async () => {
    const main = await startUpstream('main');
    const chat = await startUpstream('chat');
    const relay = createRelay({
      targetBaseUrl: main.url,
      websocket: websocket(options),
      stages: [
        routes([
          { when: { host: '*.chat.example' }, stages: [router({ targets: { chat: chat.url }, choose: () => 'chat' })] },
          { stages: [] },
        ]),
      ],
    });
    const front = await serve(relay);
    try {
      assert.is(await firstMessage(`${front.base}/r`, { host: 'eu.chat.example:443' }), 'chat /r');
      assert.is(await firstMessage(`${front.base}/r`, { host: 'chat.example' }), 'main /r');
    } finally {
      await front.close();
      await main.close();
      await chat.close();
    }
  });

  // HPM's most common pathRewrite, `{ '^/api': '' }`: /api/socket → /socket, and /api alone → /
  // with the query kept (HPM test/unit/path-rewriter.spec.ts "should remove base path").
  test(`${mode}: rewritePath({ '/api': '' }) on upgrades: /api/socket?x=1 → /socket?x=1 and /api?x=1 → /?x=1`, async () => {
    const main = await startUpstream('main');
    const relay = createRelay({ targetBaseUrl: main.url, websocket: websocket(options), stages: [rewritePath({ '/api': '' })] });
    const front = await serve(relay);
    try {
      assert.is(await firstMessage(`${front.base}/api/socket?x=1`), 'main /socket?x=1');
      assert.is(await firstMessage(`${front.base}/api?x=1`), 'main /?x=1');
      assert.is(await firstMessage(`${front.base}/apix`), 'main /apix');
    } finally {
      await front.close();
      await main.close();
    }
  });

  // HPM pathRewrite as an async function (test/e2e/path-rewriter.spec.ts "custom async rewrite").
  test(`${mode}: an async rewritePath function applies to the handshake; messages then flow`, async () => {
    const main = await startUpstream('main');
    const relay = createRelay({
      targetBaseUrl: main.url,
      websocket: websocket(options),
      stages: [rewritePath(async (path) => (path.startsWith('/socket.io') ? `/io${path.slice('/socket.io'.length)}` : path))],
    });
    const front = await serve(relay);
    try {
      assert.is(await firstMessage(`${front.base}/socket.io/?EIO=4&transport=websocket`), 'main /io/?EIO=4&transport=websocket');
    } finally {
      await front.close();
      await main.close();
    }
  });

  // HPM users tell upgrades apart by their headers (`req.headers.upgrade`). Relay removes the
  // hop-by-hop `Upgrade` before the stages (core README), so the handshake's own end-to-end
  // `Sec-WebSocket-Version` is what a condition can see: regression that it stays visible to `when`.
  test(`${mode}: when({ header: { 'sec-websocket-version': '13' } }) runs its stage for a WebSocket handshake`, async () => {
    const main = await startUpstream('main');
    const relay = createRelay({
      targetBaseUrl: main.url,
      websocket: websocket(options),
      stages: [when({ header: { 'sec-websocket-version': '13' } }, tagHandshake('x-was-upgrade', '1'))],
    });
    const front = await serve(relay);
    try {
      assert.is(await firstMessage(`${front.base}/ws`), 'main /ws');
      assert.is(main.seen[0]!.headers['x-was-upgrade'], '1');
    } finally {
      await front.close();
      await main.close();
    }
  });
}

test.run();
