// Review s41 retry: retry()'s `deadline` stops the attempt in flight by aborting the whole client record
// (`request.client.abort(ERR_DEADLINE)`). The client is still there, but the core then treats it as gone:
// a stage outside retry() that answers the 504 itself (docs/error-handling.md, "Answering errors your own
// way": catch what `next` rejects with, put the stage before retry()) has its answer dropped by
// writeResponse (`client.aborted`), and the client gets nothing at all: no status, the connection held open.
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, serveRelay } from '@relay/testkit';
import { createRelay, toRelayError, type Stage } from '@relay/core';
import { retry } from '../src/index.js';

/** Answers any 5xx failure with a stale copy (the maintenance pattern of docs/error-handling.md, for timeouts too). */
function serveStale(): Stage {
  return {
    name: 'serve-stale',
    wrap: (next) =>
      async function serveStaleStage(request) {
        try {
          return await next(request);
        } catch (error) {
          const relayError = toRelayError(error);
          if (relayError.status < 500) throw relayError;
          return { status: 200, statusMessage: '', headers: { 'content-type': 'text/plain', 'content-length': '5', 'x-stale': relayError.code }, body: Readable.from(['stale']) };
        }
      },
  };
}

/** A real client bounded in time: the status and body, or what went wrong. */
async function get(url: string, init: RequestInit = {}): Promise<string> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(3000) });
    return `${response.status} ${response.headers.get('x-stale')} ${await response.text()}`;
  } catch (error) {
    return `no answer: ${(error as Error).name}`;
  }
}

test('a stage outside retry() that answers the deadline\'s 504 itself gets its answer to the client (GET retried, POST sent once)', async () => {
  const silent = createServer(() => {});
  const url = await listen(silent);
  // Control: the same stage answering the core's own read timeout (504 ERR_READ_TIMEOUT) reaches the client.
  const plain = await serveRelay(createRelay({ targetBaseUrl: url, timeout: { read: 200 }, stages: [serveStale()] }));
  const withDeadline = await serveRelay(
    createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, stages: [serveStale(), retry({ maxRetries: 1, deadline: 300 })] }),
  );
  try {
    assert.is(await get(`${plain.url}/items`), '200 ERR_READ_TIMEOUT stale', 'control: the core timeout is answered by the stage');
    assert.is(await get(`${withDeadline.url}/items`), '200 ERR_DEADLINE stale', 'GET: the stage\'s answer to ERR_DEADLINE reaches the client');
    assert.is(await get(`${withDeadline.url}/orders`, { method: 'POST', body: 'a' }), '200 ERR_DEADLINE stale', 'POST (sent once, deadline only)');
  } finally {
    await plain.close();
    await withDeadline.close();
    silent.closeAllConnections();
    await close(silent);
  }
});

test.run();
