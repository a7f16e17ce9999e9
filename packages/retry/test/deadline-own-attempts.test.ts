// retry({ deadline }) cuts its run's own attempts (`AttemptBound`, carried by each as `request.bound`),
// never the client's: an attempt of the run still held in an inner stage when the deadline passes is
// cut when it reaches its transport, whenever that is, and a later run's attempts (an outer stage that
// tries again after the 504, as docs/error-handling.md suggests) are never cut by it.
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, fetchRaw, listen, serveRelay } from '@relay/testkit';
import { createRelay, toRelayError, type ProxyRequest, type Stage } from '@relay/core';
import { retry } from '../src/index.js';

// GET: the retry loop's attempts; POST (not retried by default): the send-once path.
for (const method of ['GET', 'POST']) {
  test(`${method}: an outer stage that tries again after ERR_DEADLINE is not cut by the first run's attempt still held in an inner stage; the held attempt never goes upstream`, async () => {
    const paths: string[] = [];
    const upstream = createServer((req, res) => {
      paths.push(req.url!);
      res.end(`answer for ${req.url}`);
    });
    const url = await listen(upstream);
    // Inside retry(): the first call through it is held 700 ms (a token fetch that hangs), later ones pass at once.
    let calls = 0;
    const holdFirstCall: Stage = {
      name: 'hold-first-call',
      wrap: (next) =>
        async function holdFirstCallStage(request: ProxyRequest) {
          calls++;
          if (calls === 1) {
            await delay(700);
            request.path = '/held-first-attempt';
          }
          return next(request);
        },
    };
    const seen: string[] = [];
    const tryAgain: Stage = {
      name: 'try-again',
      wrap: (next) =>
        async function tryAgainStage(request) {
          try {
            return await next(request);
          } catch (error) {
            seen.push(toRelayError(error).code);
            return next(request);
          }
        },
    };
    const served = await serveRelay(
      createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, stages: [tryAgain, retry({ maxRetries: 1, deadline: 300 }), holdFirstCall] }),
    );
    try {
      const response = await fetchRaw(`${served.url}/items`, { method });
      await delay(800); // the held attempt reaches its transport meanwhile
      assert.equal(seen, ['ERR_DEADLINE']);
      assert.is(`${response.status} ${response.text}`, '200 answer for /items', 'the second run was cut by the first run\'s pending cut');
      assert.equal(paths, ['/items'], 'the first run\'s held attempt went upstream after its deadline');
    } finally {
      await served.close();
      upstream.closeAllConnections();
      await close(upstream);
    }
  });
}

test.run();
