// The HTTP load suite, run at two sizes: a fast subset in the normal test run, the full one in `pnpm test:stress`.
import * as assert from 'uvu/assert';
import { startUpstream } from '@relay/testkit';
import { runLoad, startGateway } from './harness.js';

const MiB = 1024 * 1024;

/**
 * `total` requests at `concurrency` through a gateway with the retry, headers and cookies stages:
 * zero errors, every answer checked, and the gateway's file descriptors and heap back within 10%
 * of their starting values afterwards.
 */
export async function httpLoad(total: number, concurrency: number): Promise<void> {
  const upstream = await startUpstream((req, res, seen) => {
    if (req.headers['x-internal'] !== undefined || req.headers['x-service'] !== 'gateway') {
      res.writeHead(500).end('stage rules not applied');
      return;
    }
    const body = JSON.stringify({ url: req.url, method: req.method, length: seen.body.length });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'set-cookie': [`sid=${req.url?.length}; Domain=upstream.internal; Path=/`, 'theme=dark; Path=/'],
      'x-debug': 'internal',
    });
    res.end(body);
  });
  upstream.server.keepAliveTimeout = 60_000;
  const gateway = await startGateway(upstream.url);
  const check = (status: number, body: string, headers: Record<string, string | string[] | undefined>) => {
    if (status !== 200) return `status ${status}: ${body.slice(0, 80)}`;
    const parsed = JSON.parse(body) as { url: string; method: string; length: number };
    if (!parsed.url.startsWith('/items/')) return `wrong upstream path ${parsed.url}`;
    const cookies = headers['set-cookie'] as string[] | undefined;
    if (cookies?.length !== 2 || cookies[0]!.includes('Domain=')) return `cookies not rewritten: ${JSON.stringify(cookies)}`;
    if (headers['x-debug'] !== undefined) return 'x-debug was not dropped';
    return null;
  };

  const warm = await runLoad(gateway.url, Math.min(2_000, total), concurrency, check);
  assert.equal(warm.errors, [], 'warm-up errors');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = await gateway.ask<{ fds: number; heapUsed: number }>('stats');

  const result = await runLoad(gateway.url, total, concurrency, check);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await gateway.ask<{ fds: number; heapUsed: number; inFlight: number }>('stats');
  console.log(
    `${total} requests at ${concurrency} concurrent in ${result.elapsedMs} ms (${Math.round((total / result.elapsedMs) * 1000)} req/s); ` +
      `gateway fds ${before.fds} → ${after.fds}, heap ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB`,
  );
  // The gateway stops before any check can fail, so a failed check never leaves it running.
  gateway.child.send('shutdown');
  assert.is(await gateway.exited, 0, 'the gateway exits on its own');
  assert.equal(result.errors, [], 'zero errors');
  assert.is(result.ok, total);
  assert.is(after.inFlight, 0);
  // Kept-alive client and upstream connections come and go with scheduling (up to the concurrency
  // between two loads); a leak per request would show as thousands over this run.
  assert.ok(after.fds <= before.fds * 1.1 + concurrency / 4, `fds ${before.fds} → ${after.fds}`);
  assert.ok(after.heapUsed <= before.heapUsed * 1.1, `heap ${before.heapUsed} → ${after.heapUsed}`);
  await upstream.close();
}
