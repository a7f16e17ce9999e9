// Review s35 (leaks): rewriteLocation() must recognise the upstream that actually answered. With
// @relay/balance or @relay/routing's router(), each attempt goes to `request.target` (another
// origin than `targetBaseUrl`); a redirect naming that origin must not reach the client as is.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, parseTarget, type Stage } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { rewriteLocation } from '../src/index.js';

/** What balance() and router() do per attempt: send it to another of the relay's upstreams. */
function sendTo(url: string): Stage {
  const target = parseTarget(url);
  return {
    name: 'send-to',
    wrap: (next) =>
      // As balance() and router() do: the attempt goes to `target`, and its answer names it (`ProxyResponse.target`).
      async function sendToStage(request) {
        const response = await next({ ...request, target });
        response.target = target;
        return response;
      },
  };
}

function redirecting(): Promise<Upstream> {
  const upstream: Promise<Upstream> = startUpstream((_req, res) => {
    void upstream.then((self) => res.writeHead(302, { location: `${self.url}/api/v1/next?tab=1` }).end());
  });
  return upstream;
}

test('rewriteLocation: a redirect naming the per-attempt target (balance member, router choice) is rewritten, never passed with its internal address', async () => {
  const main = await redirecting();
  const member = await redirecting();
  const relay = await serveRelay(
    createRelay({
      targetBaseUrl: main.url,
      upstreamPrefix: '/api/v1',
      mountPath: '/app',
      stages: [rewriteLocation(), sendTo(member.url)],
    }),
  );
  try {
    const response = await fetchRaw(`${relay.url}/app/start`, { headers: { host: 'gw.example' } });
    assert.is(response.status, 302);
    assert.is(member.requests.length, 1, 'the member answered');
    const location = String(response.headers.location);
    assert.not.ok(location.includes(member.url), `the member's internal address reached the client: ${location}`);
    assert.is(location, 'http://gw.example/app/next?tab=1');
  } finally {
    await relay.close();
    await main.close();
    await member.close();
  }
});

test('rewriteLocation: control, a redirect naming targetBaseUrl itself is rewritten', async () => {
  const main = await redirecting();
  const relay = await serveRelay(createRelay({ targetBaseUrl: main.url, upstreamPrefix: '/api/v1', mountPath: '/app', stages: [rewriteLocation()] }));
  try {
    const response = await fetchRaw(`${relay.url}/app/start`, { headers: { host: 'gw.example' } });
    assert.is(response.headers.location, 'http://gw.example/app/next?tab=1');
  } finally {
    await relay.close();
    await main.close();
  }
});

test.run();
