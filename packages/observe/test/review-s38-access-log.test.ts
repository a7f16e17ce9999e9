// Review s38a (issue 18): access log fields checked literally against the README and docs/observability.md.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { observe, type AccessLogFields } from '../src/index.js';

test("a retry whose last attempt got no head (503, then the upstream hangs up): ttfb is null, not the discarded 503's time (docs: 'the last attempt's response head … null when no head came')", async () => {
  let seen = 0;
  const upstream = await startUpstream((req, res) => {
    if (seen++ === 0) {
      res.writeHead(503, { 'content-type': 'text/plain', 'content-length': 4, connection: 'close' });
      res.end('busy');
      return;
    }
    // The retry: the upstream closes the connection without any answer.
    req.socket.destroy();
  });
  const logger = memoryLogger();
  const obs = observe({ accessLog: true });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt] }),
  );
  try {
    const response = await fetchRaw(`${served.url}/items`);
    assert.is(response.status, 502);
    assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'request')));
    const fields = logger.lines.find((line) => line.message === 'request')!.fields as unknown as AccessLogFields;
    assert.is(fields.status, 502);
    assert.is(fields.attempts, 2);
    assert.is(fields.code, 'ERR_UPSTREAM_RESET');
    // The client's answer is the relay's 502: no upstream head came for the attempt that decided it.
    assert.is(fields.ttfb, null, `ttfb ${String(fields.ttfb)} is the first (discarded) attempt's head`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
