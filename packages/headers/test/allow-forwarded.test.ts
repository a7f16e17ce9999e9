// allowRequest keeps every forwarding header the core sets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { headers } from '../src/index.js';

test('allowRequest keeps X-Forwarded-Port, which the core sets (docs/headers.md "always kept")', async () => {
  const upstream = await startUpstream();
  const plain = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const allowed = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ allowRequest: ['x-keep'] })] }));
  try {
    const without = JSON.parse((await fetchRaw(plain.url)).text) as { headers: Record<string, string> };
    assert.is(without.headers['x-forwarded-port'], String(plain.port), 'the core sets it');
    const seen = JSON.parse((await fetchRaw(allowed.url, { headers: { 'x-keep': '1', 'x-other': '2' } })).text) as { headers: Record<string, string> };
    assert.is(seen.headers['x-other'], undefined);
    assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.is(seen.headers['x-forwarded-port'], String(allowed.port), 'an allow list keeps x-forwarded-port');
  } finally {
    await plain.close();
    await allowed.close();
    await upstream.close();
  }
});

test.run();
