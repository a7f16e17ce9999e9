// allowRequest keeps every forwarding header the core sets, and the Forwarded and Via chains this stage appends to.
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

// `forwarded: true` ('append') keeps the client's elements before this hop's (like X-Forwarded-For), and `via`
// appends to `Via` (RFC 9110 §7.6.3): an allow list in the same stage must not cut a trusted proxy's entries first,
// which would silently turn 'append' into 'replace' while the X-Forwarded-For chain survives.
test('allowRequest does not cut a trusted proxy\'s Forwarded and Via chains that forwarded: true and via append to', async () => {
  const upstream = await startUpstream();
  const stages = [headers({ forwarded: true, via: true, allowRequest: ['accept'] })];
  const gw = await serveRelay(createRelay({ targetBaseUrl: upstream.url, trustProxy: true, stages }));
  try {
    const response = await fetchRaw(`${gw.url}/x`, {
      headers: { forwarded: 'for=198.51.100.1;proto=https', via: '1.1 lb', 'x-forwarded-for': '198.51.100.1', 'x-unlisted': '1' },
    });
    assert.is(response.status, 200);
    const seen = JSON.parse(response.body.toString()).headers as Record<string, string>;
    assert.is(seen['x-unlisted'], undefined, 'control: the allow list is applied');
    assert.is(seen['x-forwarded-for'], '198.51.100.1, 127.0.0.1', 'control: the X-Forwarded-For chain is kept');
    assert.ok(seen.forwarded?.startsWith('for=198.51.100.1;proto=https, for=127.0.0.1'), `Forwarded lost the trusted element: ${seen.forwarded}`);
    assert.is(seen.via, '1.1 lb, 1.1 relay', 'Via lost the earlier hop');
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test('allowResponse keeps the upstream\'s Via entries when via appends to them; without via, Via is an unlisted header', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', via: '1.1 backend-cache', 'x-unlisted': '1' });
    res.end('ok');
  });
  const appending = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ via: true, allowResponse: ['content-type'] })] }));
  const listing = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ allowResponse: ['content-type'] })] }));
  try {
    const appended = await fetchRaw(appending.url);
    assert.is(appended.status, 200);
    assert.is(appended.headers['x-unlisted'], undefined, 'control: the allow list is applied');
    assert.is(appended.headers.via, '1.1 backend-cache, 1.1 relay');
    const listed = await fetchRaw(listing.url);
    assert.is(listed.headers.via, undefined, 'an allow list without via still drops Via');
  } finally {
    await appending.close();
    await listing.close();
    await upstream.close();
  }
});

test.run();
