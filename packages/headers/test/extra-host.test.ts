// extraRequest host is one host[:port]: a fixed value is checked when the stage is built, a function's value per request
// (a value that is not one valid Host would be sent upstream as the name-based virtual host).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { headers } from '../src/index.js';

test('extraRequest host: a value that is not one valid Host (two values, a space, userinfo) is refused when the stage is built', () => {
  for (const host of [['a.example', 'b.example'], 'a b.example', 'user@internal.example', 'a.example/path']) {
    assert.throws(
      () => headers({ extraRequest: { host } }),
      (error: unknown) => error instanceof TypeError && /extraRequest\["host"\]/.test(error.message),
      `extraRequest host ${JSON.stringify(host)} was accepted`,
    );
  }
  // Control: a plain host and a host:port stay accepted.
  headers({ extraRequest: { host: 'internal.example' } });
  headers({ extraRequest: { host: 'internal.example:8080' } });
});

test('extraRequest host: an empty value is refused too (the upstream URI always has an authority)', () => {
  assert.throws(
    () => headers({ extraRequest: { Host: '' } }),
    (error: unknown) => error instanceof TypeError && /extraRequest\["Host"\] must be one host\[:port\]/.test(error.message),
  );
});

test('extraRequest host as a function: a valid value is sent, an invalid one is a 500 ERR_INTERNAL and nothing reaches the upstream', async () => {
  const upstream = await startUpstream();
  const hosts: Record<string, string> = { '/good': 'api.internal:8080', '/space': 'a b.example', '/userinfo': 'user@internal.example' };
  const stages = [headers({ extraRequest: { host: (request) => hosts[request.path] } })];
  const gw = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
  try {
    const good = await fetchRaw(`${gw.url}/good`);
    assert.is(good.status, 200);
    assert.is((JSON.parse(good.text) as { headers: Record<string, string> }).headers.host, 'api.internal:8080');
    for (const path of ['/space', '/userinfo']) {
      const refused = await fetchRaw(`${gw.url}${path}`);
      assert.is(refused.status, 500, path);
      assert.not.match(refused.text, 'internal.example', 'the client never sees the value');
    }
    assert.is(upstream.requests.length, 1, 'only the valid Host reached the upstream');
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test.run();
