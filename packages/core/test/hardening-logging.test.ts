import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, closedPort, fetchRaw, listen, memoryLogger, serveRelay } from '@relay/testkit';
import { createRelay, type RelayOptions } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';

// Issue 13, item 10: query strings (where tokens live) stay out of log lines unless logQuery is set.

const secret = 'SECRET-TOKEN-42';

async function logsOf(options: Partial<RelayOptions>, targets: string[]): Promise<string> {
  const logger = memoryLogger();
  const upstreamUrl = options.targetBaseUrl ?? `http://127.0.0.1:${await closedPort()}`;
  const served = await serveRelay(createRelay({ ...options, targetBaseUrl: upstreamUrl, logger }));
  for (const target of targets) await fetchRaw(`${served.url}${target}`);
  await served.close();
  return JSON.stringify(logger.lines);
}

test('an upstream failure line (node:http and got transports) shows the path without the query', async () => {
  for (const transport of [undefined, gotTransport(), undiciTransport()]) {
    const logged = await logsOf({ ...(transport ? { transport } : {}) }, [`/login?token=${secret}`]);
    assert.ok(logged.includes('/login'), logged);
    assert.not.ok(logged.includes(secret), logged);
  }
  const withQuery = await logsOf({ logQuery: true }, [`/login?token=${secret}`]);
  assert.ok(withQuery.includes(`/login?token=${secret}`), 'logQuery: true logs the query');
});

test('a refused path and a response that fails after it started are logged without the query', async () => {
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => res.destroy(), 20);
  });
  const url = await listen(upstream);
  const logged = await logsOf({ targetBaseUrl: url }, [`/a/..%2f..?token=${secret}`, `/cut?token=${secret}`]);
  assert.ok(logged.includes('ERR_BAD_PATH'), logged);
  assert.ok(logged.includes('/cut'), logged);
  assert.not.ok(logged.includes(secret), logged);
  await close(upstream);
});

test('logQuery must be a boolean', () => {
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', logQuery: 'yes' as never }), /logQuery must be a boolean/);
});

test.run();
