// relayLifecycle's close({ timeout }) arms the timer that cuts what is left; node fires one longer than
// 2^31−1 ms (about 24.8 days) after 1 ms. close() and shutdown() refuse such a timeout, naming it,
// before anything stops: close() used to stop the server and leave the relays running.
import { createServer } from 'node:http';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { close, fetchRaw, listen, startUpstream } from '@relay/testkit';
import { relayLifecycle, toConnect } from '../src/index.js';

const limit = 2 ** 31 - 1;
const thirtyDays = 30 * 24 * 3600 * 1000;

async function rejection(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => assert.unreachable('expected a RangeError'),
    (reason: unknown) => reason,
  );
  assert.instance(error, RangeError);
  return (error as Error).message;
}

test('close() and shutdown() with a timeout past the timer limit reject naming it, and nothing stops; at the limit both work', async () => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const relays = relayLifecycle([relay]);
  await relays.startup();
  const server = createServer(express().use('/api', toConnect(relay)));
  const url = await listen(server);
  try {
    assert.is(
      await rejection(relays.close(server, { timeout: thirtyDays })),
      `timeout must be at most ${limit} ms (about 24.8 days, node's timer limit; 0 turns it off), got ${thirtyDays}`,
    );
    assert.match(await rejection(relays.shutdown({ timeout: limit + 1 })), /^timeout must be at most 2147483647 ms/);
    assert.is(server.listening, true, 'the refused close left the server listening');
    assert.is(relay.state, 'running');
    assert.is((await fetchRaw(`${url}/api/x`)).text, 'ok');
    await relays.close(server, { timeout: limit });
    assert.is(server.listening, false);
    assert.is(relay.state, 'stopped');
    await relays.shutdown({ timeout: limit });
  } finally {
    if (server.listening) await close(server);
    await upstream.close();
  }
});

test.run();
