// Review s37 of the gateway's `rateLimit` route key (issue 21 through issue 19's config): one quota per
// route, the IETF fields of a route with several limits, and a route limit under `relay serve --workers`.
import { createServer, request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, startUpstream, type Upstream } from '@relay/testkit';
import { createGateway, loadConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { configDir, startBin } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });
let upstream: Upstream;

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
});

test.after(async () => {
  await upstream.close();
  files.cleanup();
});

async function withGateway(routes: string[], run: (base: string) => Promise<void>): Promise<void> {
  const file = files.write(`g-${Math.random().toString(36).slice(2)}.yaml`, ['listen: [{ port: 0 }]', 'routes:', ...routes, ''].join('\n'));
  const gateway: Gateway = createGateway(await loadConfig(file), { logger });
  await gateway.startup();
  const server = createServer(gateway.handle);
  const base = await listen(server);
  try {
    await run(base);
  } finally {
    await close(server);
    await gateway.shutdown(500);
  }
}

test('two routes with the same rateLimit options have a quota each (regression)', async () => {
  // Issue 21: limits per route; nginx: a limit_req per location with its own zone.
  await withGateway(
    [
      '  - match: { path: /a }', `    upstream: ${upstream.url}`, '    rateLimit: { points: 2, duration: 60000 }',
      '  - match: { path: /b }', `    upstream: ${upstream.url}`, '    rateLimit: { points: 2, duration: 60000 }',
    ],
    async (base) => {
      const a = [];
      for (let i = 0; i < 3; i++) a.push((await fetchRaw(`${base}/a`)).status);
      const b = [];
      for (let i = 0; i < 3; i++) b.push((await fetchRaw(`${base}/b`)).status);
      assert.equal(a, [200, 200, 429]);
      assert.equal(b, [200, 200, 429], 'route /b kept its own two requests');
    },
  );
});

test('a route with a list of two limits and no names: every RateLimit-Policy and RateLimit item has its own policy name', async () => {
  // draft-ietf-httpapi-ratelimit-headers, "RateLimit Field": a server "MUST not return a response that contains
  // multiple rate limit fields with the same policy value"; the identifier is what ties a RateLimit item to its
  // RateLimit-Policy item. The README's `rateLimit: … or a list of them` names no `name` as required.
  await withGateway(
    ['  - match: { path: /c }', `    upstream: ${upstream.url}`, '    rateLimit: [{ points: 5, duration: 1000 }, { points: 100, duration: 60000, key: route }]'],
    async (base) => {
      const response = await fetchRaw(`${base}/c`);
      assert.is(response.status, 200);
      const policyNames = String(response.headers['ratelimit-policy']).split(', ').map((item) => item.split(';')[0]);
      const itemNames = String(response.headers.ratelimit).split(', ').map((item) => item.split(';')[0]);
      assert.is(policyNames.length, 2, `two policies: ${response.headers['ratelimit-policy']}`);
      assert.is(new Set(policyNames).size, 2, `RateLimit-Policy: ${response.headers['ratelimit-policy']}`);
      assert.is(new Set(itemNames).size, 2, `RateLimit: ${response.headers.ratelimit}`);
    },
  );
});

/** The `RateLimit` field of each answer (fix s37: one count across workers, as one process sends). */
const rateLimitFields: string[] = [];

/** GET on a new connection each time, so the primary hands the connections to both workers. */
function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      rateLimitFields.push(String(res.headers.ratelimit));
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(20_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

test('relay serve --workers 2: a route limit of 10 (key: route) lets 10 requests through in all, not 10 per worker', async () => {
  // Issue 21: "When users run several gateway instances, a per-process limit is wrong by the number of instances".
  // nginx keeps limit_req zones in shared memory, one count for all its worker processes; docs/gateway.md's
  // Workers section and the README's --workers row say nothing of a limit per worker.
  const config = files.write(
    'workers.yaml',
    ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', '  - name: all', `    upstream: ${upstream.url}`, '    rateLimit: { points: 10, duration: 3600000, key: route }', ''].join('\n'),
  );
  const gateway = await startBin(['serve', config, '--workers', '2'], { listeningCount: 2 });
  const before = upstream.requests.length;
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push(await get(`${gateway.url}/x/${i}`));
    assert.ok(statuses.every((status) => status === 200 || status === 429), `only 200 and 429: ${statuses}`);
    const allowed = statuses.filter((status) => status === 200).length;
    assert.is(allowed, 10, `${allowed} of 30 requests let through for a route limit of 10`);
    assert.is(upstream.requests.length - before, 10);
    // The fields count down as a single process's would, whichever worker answered.
    assert.equal(rateLimitFields.slice(0, 11).map((field) => /r=(\d+)/.exec(field)?.[1]), ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0', '0']);
  } finally {
    await gateway.stop('SIGTERM');
  }
});

test.run();
