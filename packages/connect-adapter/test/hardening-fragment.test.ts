import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { sendRaw, startUpstream } from '@relay/testkit';
import { toConnect } from '../src/index.js';
import { express5 } from './apps.js';

// Issue 13, item 3: Express + toConnect must not forward a raw "#" (GET /api/..# became /v1/..#).

test('a raw "#" through Express + toConnect is 400 and never reaches the upstream', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v1' });
  await relay.startup();
  const app = await express5.start({ mounts: [['/api', toConnect(relay)]] });
  for (const target of ['/api/..#', '/api/x#y', '/api/x?q=1#..']) {
    const raw = await sendRaw(app.port, `GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
    assert.is(Number(raw.slice(9, 12)), 400, `${target} → ${raw.split('\r\n')[0]}`);
    assert.ok(raw.includes('ERR_BAD_PATH'), raw.slice(-200));
  }
  assert.is(upstream.requests.length, 0);
  const ok = await sendRaw(app.port, 'GET /api/fine HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(Number(ok.slice(9, 12)), 200);
  assert.is(upstream.requests[0]!.url, '/v1/fine');
  await app.close();
  await relay.shutdown();
  await upstream.close();
});

test.run();
