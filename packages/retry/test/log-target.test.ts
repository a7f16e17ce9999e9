// The retry log line's `url` (README "Logging": upstream origin and path) names the upstream the failed
// attempt went to, as the core's own "upstream request failed" line does: the member a balancer inside
// retry() chose, or the target a router before it chose, not the relay's targetBaseUrl.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay, parseTarget, type Stage } from '@relay/core';
// Not a dependency of @relay/retry: the balancer's source, for a retry that moves to the other member.
import { balance } from '../../balance/src/index.js';
import { retry } from '../src/index.js';

test('the retry line names the member that failed, as the core\'s failure line does (balance() inside retry())', async () => {
  const deadPort = await closedPort();
  const live = await startUpstream();
  const logger = memoryLogger();
  const pool = balance({ targets: [`http://127.0.0.1:${deadPort}`, live.url], strategy: 'round-robin', outlier: false });
  const served = await serveRelay(createRelay({ targetBaseUrl: live.url, logger, stages: [retry({ maxRetries: 1, backoffFactor: 5 }), pool] }));
  try {
    // Round-robin: one of two requests goes to the refusing member first.
    for (let index = 0; index < 2; index++) assert.is((await fetchRaw(`${served.url}/items/${index}`)).status, 200);
    const failed = logger.lines.find((line) => line.message === 'upstream request failed');
    const retried = logger.lines.find((line) => line.message === 'retrying upstream request');
    assert.ok(failed !== undefined && retried !== undefined, 'one failure and one retry were logged');
    assert.ok(String(failed.fields.url).startsWith(`http://127.0.0.1:${deadPort}/items/`), `the core names the refusing member: ${String(failed.fields.url)}`);
    assert.is(retried.fields.url, failed.fields.url, 'the retry line names the upstream that refused');
  } finally {
    await served.close();
    await live.close();
  }
});

test('the retry line names the target a router before retry() chose, not targetBaseUrl', async () => {
  const fallback = await startUpstream();
  const busy = await startUpstream((_req, res) => res.writeHead(503, { 'content-length': '4' }).end('busy'));
  const logger = memoryLogger();
  const routed = parseTarget(busy.url);
  const router: Stage = {
    name: 'router',
    wrap: (next) =>
      function routerStage(request) {
        request.target = routed;
        return next(request);
      },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: fallback.url, logger, stages: [router, retry({ maxRetries: 1, backoffFactor: 5 })] }));
  try {
    const answer = await fetchRaw(`${served.url}/orders`);
    assert.is(answer.status, 503);
    assert.is(busy.requests.length, 2, 'both attempts went to the routed target');
    assert.is(fallback.requests.length, 0);
    const retried = logger.lines.find((line) => line.message === 'retrying upstream request');
    assert.is(retried?.fields.url, `${busy.url}/orders`);
  } finally {
    await served.close();
    await fallback.close();
    await busy.close();
  }
});

test.run();
