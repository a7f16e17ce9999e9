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

test('a logger that throws: startup, an unreachable upstream and a refused request are still answered; one process warning says so', async () => {
  let calls = 0;
  const boom = function (this: unknown) {
    calls++;
    assert.ok(this === throwing, 'called as the logger\'s own method (pino reads this)');
    throw new Error('sink closed');
  };
  const throwing = { debug: boom, info: boom, warn: boom, error: boom };
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}`, mountPath: '/api', logger: throwing }));
  const failed = await fetchRaw(`${served.url}/api/x`);
  const refused = await fetchRaw(`${served.url}/elsewhere`);
  assert.equal([failed.status, refused.status], [502, 404]);
  assert.is((await fetchRaw(`${served.url}/api/again`)).status, 502);
  await served.close();
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.ok(calls >= 3, `the logger was called (${calls})`);
  assert.equal(warnings.map((warning) => (warning as Error & { code?: string }).code), ['RELAY_LOGGER_THREW']);
  assert.match(warnings[0]!.message, /sink closed/);
});

test('logQuery must be a boolean', () => {
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', logQuery: 'yes' as never }), /logQuery must be a boolean/);
});

test.run();
