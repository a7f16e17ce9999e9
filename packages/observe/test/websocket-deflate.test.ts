// @relay/observe on WebSocket sessions through @relay/ws with permessage-deflate on both
// sides (the `ws` library), a client that vanishes without a close frame, an upstream that
// refuses the upgrade.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, relayChannels, type RequestEndMessage } from '@relay/core';
import { close, listen, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '@relay/ws';
import { observe } from '../src/index.js';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface Deflating {
  url: string;
  extensions: string[];
  closes: number[];
  close(): Promise<void>;
}

/** A `ws` echo upstream with permessage-deflate on; it refuses `/forbidden` with 403. */
async function deflatingUpstream(): Promise<Deflating> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } });
  const extensions: string[] = [];
  const closes: number[] = [];
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    if (req.url === '/forbidden') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      extensions.push(ws.extensions);
      ws.on('error', () => {});
      ws.on('close', (code) => closes.push(code));
      ws.on('message', (data, binary) => ws.send(data, { binary }));
    });
  });
  const url = await listen(server);
  return {
    url,
    extensions,
    closes,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await close(server);
    },
  };
}

async function relayFor(upstream: string, options: WebSocketOptions = {}) {
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } }, metrics: { registry, relay: 'ws' } });
  const relay = createRelay({ targetBaseUrl: upstream, websocket: websocket(options), stages: [obs.request, obs.attempt] });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const url = (await listen(server)).replace('http:', 'ws:');
  return {
    url,
    lines,
    registry,
    close: async () => {
      await relay.shutdown({ timeout: 500 });
      await close(server);
    },
  };
}

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function exchange(ws: WebSocket, messages: string[]): Promise<void> {
  for (const message of messages) {
    const echoed = new Promise<void>((resolve) => ws.once('message', () => resolve()));
    ws.send(message);
    await echoed;
  }
}

const big = 'lorem ipsum dolor sit amet '.repeat(400); // 10.8 kB, compresses well

for (const mode of ['transparent', 'terminating'] as const) {
  test(`permessage-deflate both sides (${mode}): a 101 line at close, compressed bytes, messages in/out, sessions`, async () => {
    const upstream = await deflatingUpstream();
    const front = await relayFor(upstream.url, mode === 'terminating' ? { perMessageDeflate: true, maxPayload: 1_000_000 } : {});
    try {
      const ws = await open(`${front.url}/room`);
      assert.match(ws.extensions, /permessage-deflate/);
      assert.ok(await waitFor(() => upstream.extensions.length === 1));
      assert.match(upstream.extensions[0]!, /permessage-deflate/);
      await exchange(ws, [big, big, 'short', big]);
      // A fragmented message counts once.
      const echoed = new Promise<void>((resolve) => ws.once('message', () => resolve()));
      ws.send('part one ', { fin: false });
      ws.send('part two', { fin: true });
      await echoed;
      let text = await front.registry.metrics();
      assert.is(value(text, 'relay_websocket_sessions_open{relay="ws"}'), 1);
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.close(1000, 'bye');
      await closed;
      assert.ok(await waitFor(() => front.lines.length === 1));
      const line = front.lines[0]!;
      assert.is(line.status, 101);
      assert.is(line.websocket, true);
      assert.is(line.code, null);
      assert.ok((line.bytesIn as number) > 0 && (line.bytesIn as number) < 3 * big.length, `bytesIn ${line.bytesIn}: compressed frames`);
      assert.ok((line.bytesOut as number) > 0 && (line.bytesOut as number) < 3 * big.length, `bytesOut ${line.bytesOut}`);
      text = await front.registry.metrics();
      assert.equal(
        {
          open: value(text, 'relay_websocket_sessions_open{relay="ws"}'),
          sessions: value(text, 'relay_websocket_sessions_total{relay="ws"}'),
          messagesIn: value(text, 'relay_websocket_messages_total{relay="ws",direction="in"}'),
          messagesOut: value(text, 'relay_websocket_messages_total{relay="ws",direction="out"}'),
          bytesIn: value(text, 'relay_websocket_bytes_total{relay="ws",direction="in"}'),
          bytesOut: value(text, 'relay_websocket_bytes_total{relay="ws",direction="out"}'),
        },
        { open: 0, sessions: 1, messagesIn: 5, messagesOut: 5, bytesIn: line.bytesIn, bytesOut: line.bytesOut },
      );
    } finally {
      await front.close();
      await upstream.close();
    }
  });

  test(`a client that vanishes without a close frame (${mode}): the line, the session counted, the gauge back to 0, the upstream closed`, async () => {
    const upstream = await deflatingUpstream();
    const front = await relayFor(upstream.url, mode === 'terminating' ? { perMessageDeflate: true, maxPayload: 1_000_000 } : {});
    const closes: unknown[] = [];
    const onClose = (message: unknown) => closes.push(message);
    subscribe(relayChannels.websocketClose, onClose);
    try {
      const ws = await open(`${front.url}/room`);
      await exchange(ws, [big, 'two']);
      ws.terminate();
      assert.ok(await waitFor(() => front.lines.length === 1, 3000));
      assert.ok(await waitFor(() => upstream.closes.length === 1, 3000));
      const line = front.lines[0]!;
      assert.is(line.status, 101);
      assert.is(line.websocket, true);
      const text = await front.registry.metrics();
      assert.equal(
        {
          open: value(text, 'relay_websocket_sessions_open{relay="ws"}'),
          sessions: value(text, 'relay_websocket_sessions_total{relay="ws"}'),
          messagesIn: value(text, 'relay_websocket_messages_total{relay="ws",direction="in"}'),
          messagesOut: value(text, 'relay_websocket_messages_total{relay="ws",direction="out"}'),
          closeEvents: closes.length,
        },
        { open: 0, sessions: 1, messagesIn: 2, messagesOut: 2, closeEvents: 1 },
      );
    } finally {
      unsubscribe(relayChannels.websocketClose, onClose);
      await front.close();
      await upstream.close();
    }
  });
}

test('an upstream that refuses the upgrade with 403: the line says 403, not 101; 4xx counted; no session', async () => {
  const upstream = await deflatingUpstream();
  const front = await relayFor(upstream.url);
  const ends: RequestEndMessage[] = [];
  const onEnd = (message: unknown) => ends.push(message as RequestEndMessage);
  subscribe(relayChannels.requestEnd, onEnd);
  try {
    const ws = new WebSocket(`${front.url}/forbidden`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      ws.on('error', () => {});
    });
    assert.is(status, 403);
    assert.ok(await waitFor(() => front.lines.length === 1));
    const line = front.lines[0]!;
    assert.is(line.status, 403);
    assert.is(line.websocket, false);
    assert.is(line.bytesOut, 9);
    const text = await front.registry.metrics();
    assert.is(value(text, `relay_requests_total{relay="ws",route="",method="GET",status_class="4xx",target="${upstream.url}"}`), 1);
    assert.is(value(text, 'relay_websocket_sessions_total{relay="ws"}') ?? 0, 0);
    assert.ok(await waitFor(() => ends.length === 1));
    assert.is(ends[0]!.status, 403);
  } finally {
    unsubscribe(relayChannels.requestEnd, onEnd);
    await front.close();
    await upstream.close();
  }
});

test.run();
