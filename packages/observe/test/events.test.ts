// The core's node:diagnostics_channel events, seen by a subscriber for real traffic: an HTTP request
// retried once (with @relay/retry) and a WebSocket session (with @relay/ws and a real ws upstream).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createRelay,
  relayChannels,
  type AttemptErrorMessage,
  type AttemptResponseMessage,
  type RequestEndMessage,
  type RequestStartMessage,
} from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { echoSession, handshakeAndLeave, scripted, serveWithUpgrades, startEchoWs, startLateWs } from './helpers.js';

/** Subscribes to every Relay channel; each event is `name` plus a short summary of its message. */
function record() {
  const events: string[] = [];
  const handlers = Object.entries(relayChannels).map(([key, name]) => {
    const handler = (message: unknown) => events.push(`${key} ${summary(message)}`.trim());
    subscribe(name, handler);
    return [name, handler] as const;
  });
  return { events, stop: () => handlers.forEach(([name, handler]) => unsubscribe(name, handler)) };
}

function summary(message: unknown): string {
  const m = message as Partial<RequestStartMessage & RequestEndMessage & AttemptResponseMessage & AttemptErrorMessage>;
  const parts: string[] = [];
  if (m.request !== undefined) parts.push(`#${m.request.attempt}`);
  if (m.upgrade === true) parts.push('upgrade');
  if (m.response !== undefined) parts.push(String(m.response.status));
  if (m.status !== undefined) parts.push(`status ${m.status}${m.completed === false ? ' incomplete' : ''}`);
  if (m.error !== undefined) parts.push(m.error.code);
  return parts.join(' ');
}

test('an HTTP request retried once: every event in order, then the relay stops', async () => {
  const upstream = await scripted([503, 200]);
  const { events, stop } = record();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 1 })] }));
  const response = await fetchRaw(`${served.url}/items`);
  assert.is(response.status, 200);
  assert.ok(await waitFor(() => events.some((event) => event.startsWith('requestEnd'))));
  await served.close();
  stop();
  await upstream.close();
  assert.equal(events, [
    'relayStart',
    'requestStart #1',
    'attemptStart #1',
    'attemptResponse #1 503',
    'attemptEnd #1 503',
    'attemptStart #2',
    'attemptResponse #2 200',
    'attemptEnd #2 200',
    'requestEnd #1 status 200',
    'relayStop',
  ]);
});

test('a failed attempt is attempt:error; the client gets 502', async () => {
  const port = await closedPort();
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}` }));
  const { events, stop } = record();
  assert.is((await fetchRaw(`${served.url}/`)).status, 502);
  assert.ok(await waitFor(() => events.some((event) => event.startsWith('requestEnd'))));
  stop();
  await served.close();
  assert.equal(events, ['requestStart #1', 'attemptStart #1', 'attemptError #1 ERR_UPSTREAM_UNREACHABLE', 'requestEnd #1 status 502']);
});

test('a client that leaves before the response head: attempt:error ERR_CLIENT_ABORTED, request:end 499 incomplete', async () => {
  const upstream = await startUpstream(() => {
    // Never answers.
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const { events, stop } = record();
  const req = httpRequest(`${served.url}/slow`, { agent: false });
  req.on('error', () => {});
  req.end();
  assert.ok(await waitFor(() => upstream.requests.length === 1));
  req.destroy();
  assert.ok(await waitFor(() => events.some((event) => event.startsWith('requestEnd'))));
  stop();
  assert.equal(events, ['requestStart #1', 'attemptStart #1', 'attemptError #1 ERR_CLIENT_ABORTED', 'requestEnd #1 status 499 incomplete']);
  upstream.server.closeAllConnections();
  await served.close();
  await upstream.close();
});

test('a WebSocket client that leaves during the handshake: the attempt is aborted at once (as for HTTP), no websocket:open, request:end 499 incomplete', async () => {
  const upstream = await startLateWs();
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url });
  const { events, stop } = record();
  await handshakeAndLeave(served.url, upstream);
  assert.ok(await waitFor(() => events.some((event) => event.startsWith('requestEnd'))));
  stop();
  // Not after the upstream's late 101: the relay sees the client leave and closes the upstream handshake.
  assert.equal(events, ['requestStart #1 upgrade', 'attemptStart #1', 'attemptError #1 ERR_CLIENT_ABORTED', 'requestEnd #1 status 499 incomplete']);
  await served.close();
  await upstream.close();
});

test('a WebSocket session: handshake events, open, the handshake answered, close', async () => {
  const upstream = await startEchoWs();
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url });
  const { events, stop } = record();
  assert.equal(await echoSession(`${served.url}/chat`, ['hi']), ['hi']);
  assert.ok(await waitFor(() => events.some((event) => event.startsWith('websocketClose'))));
  stop();
  await served.close();
  await upstream.close();
  assert.equal(events, [
    'requestStart #1 upgrade',
    'attemptStart #1',
    'attemptResponse #1 101',
    'attemptEnd #1 101',
    'websocketOpen #1',
    'requestEnd #1 status 101',
    'websocketClose #1',
  ]);
});

test.run();
