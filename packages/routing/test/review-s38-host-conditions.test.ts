// Review s38d: when({ host }) patterns that can never match are accepted silently.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { headers } from '@relay/headers';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { when } from '../src/index.js';

/** Whether `when({ host: pattern })` runs its stage for a request with `Host: host`, or the TypeError it throws when built. */
async function hostMatches(pattern: string, host: string): Promise<boolean | string> {
  let stage: Stage;
  try {
    stage = when({ host: pattern }, headers({ extraRequest: { 'x-matched': '1' } }));
  } catch (error) {
    return error instanceof TypeError ? 'TypeError' : String(error);
  }
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage], logger: memoryLogger() }));
  try {
    const response = await fetchRaw(`${served.url}/x`, { headers: { host } });
    assert.is(response.status, 200);
    return upstream.requests[0]?.headers['x-matched'] === '1';
  } finally {
    await served.close();
    await upstream.close();
  }
}

test('when({ host }): a pattern written with a port or a trailing dot matches that host, or is refused when built (never a silent never-match)', async () => {
  // The client's Host has its port and trailing dot ignored (README); the pattern as a user copies it from a Host header does not.
  const withPort = await hostMatches('api.example.com:8080', 'api.example.com:8080');
  assert.ok(withPort === true || withPort === 'TypeError', `"api.example.com:8080" neither matched nor was refused (${String(withPort)})`);
  const fqdn = await hostMatches('api.example.com.', 'api.example.com');
  assert.ok(fqdn === true || fqdn === 'TypeError', `"api.example.com." neither matched nor was refused (${String(fqdn)})`);
  const wildcardFqdn = await hostMatches('*.example.com.', 'a.example.com');
  assert.ok(wildcardFqdn === true || wildcardFqdn === 'TypeError', `"*.example.com." neither matched nor was refused (${String(wildcardFqdn)})`);
  // Regression: the documented forms.
  assert.is(await hostMatches('API.example.com', 'api.example.com.:8080'), true);
  assert.is(await hostMatches('*.example.com', 'example.com'), false);
});

test.run();
