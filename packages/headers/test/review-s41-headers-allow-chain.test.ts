// Review s41 (headers): `forwarded: true` ('append') "keeps the client's elements before it (like X-Forwarded-For)"
// and `via` appends this relay's entry to `Via` (RFC 9110 §7.6.3). With an `allowRequest` list in the same stage, the
// allow list runs first and drops the trusted proxy's `Forwarded` and `Via` before this hop appends to them, so the
// upstream sees only the relay's own element: 'append' silently becomes 'replace'. X-Forwarded-For, by contrast,
// survives (alwaysAllowedRequestHeaders), so the two chains disagree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { headers } from '../src/index.js';

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

test.run();
