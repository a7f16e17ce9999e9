// Review s36 (issue 23, reuse): the limits decisions without a relay, as docs/reuse.md and
// packages/limits/README.md "createLimiter(options): the decision without a relay" show them:
// createLimiter() in a plain node:http handler, and SlotTable as concurrencyLimit()'s table.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw } from '@relay/testkit';
import { concurrencyLimit, createLimiter, SlotTable } from '@relay/limits';

/** What a bad argument throws: its class and message, or 'nothing'. */
function thrown(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
  return 'nothing';
}

test('new SlotTable(max) checks max as concurrencyLimit({ max }) does (TypeError/RangeError naming max)', () => {
  // docs/reuse.md lists `new SlotTable(max)` beside concurrencyLimit(options) and says: "Each function
  // takes the options of its stage, checked when it is built with the same errors (a TypeError or
  // RangeError naming the option)". concurrencyLimit({ max: NaN }) throws; new SlotTable(NaN) must too,
  // or it admits every caller (NaN compares false) and SlotTable(-1) refuses every one.
  for (const bad of [Number.NaN, -1, 0, 1.5, undefined, '2']) {
    assert.match(thrown(() => concurrencyLimit({ max: bad as number })), /max/, `concurrencyLimit({ max: ${String(bad)} })`);
    const message = thrown(() => new SlotTable(bad as number));
    assert.match(message, /max/, `new SlotTable(${typeof bad === 'string' ? JSON.stringify(bad) : String(bad)}) threw: ${message}`);
  }
});

test('SlotTable: max slots per key, release frees one, once (regression)', () => {
  const table = new SlotTable(2);
  const first = table.acquire('u');
  const second = table.acquire('u');
  assert.ok(first && second);
  assert.is(table.acquire('u'), null, 'third refused');
  assert.ok(table.acquire('v'), 'another key has its own count');
  first!.release();
  first!.release();
  assert.ok(table.acquire('u'), 'one freed');
  assert.is(table.acquire('u'), null, 'a second release of the same slot freed nothing');
});

test('createLimiter in a plain node:http handler: five logins per 15 minutes, the sixth gets 429 with Retry-After: 180 (docs/limits.md)', async () => {
  // docs/limits.md "The decision as a plain function": "Five attempts per user name every 15 minutes;
  // the sixth gets Retry-After: 180". RFC 9110 §10.2.3 Retry-After in delay-seconds.
  const logins = createLimiter({ name: 'login', points: 5, duration: 15 * 60_000 });
  const server = http.createServer(async (req, res) => {
    const decision = await logins.consume(`user:${new URL(req.url ?? '/', 'http://x').searchParams.get('user')}`);
    if (!decision.allowed) {
      res.writeHead(429, logins.headers(decision)).end('too many attempts\n');
      return;
    }
    res.writeHead(200, logins.headers(decision)).end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const statuses: number[] = [];
    let last = await fetchRaw(`${base}/login?user=ada`);
    statuses.push(last.status);
    for (let index = 1; index < 6; index++) {
      last = await fetchRaw(`${base}/login?user=ada`);
      statuses.push(last.status);
    }
    assert.equal(statuses, [200, 200, 200, 200, 200, 429]);
    assert.is(last.headers['retry-after'], '180');
    assert.is(last.headers['ratelimit-policy'], '"login";q=5;w=900');
    assert.is((await fetchRaw(`${base}/login?user=bob`)).status, 200, 'another key has its own bucket');
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('createLimiter: bad options name the option (regression)', () => {
  assert.match(thrown(() => createLimiter({ points: 0, duration: 1000 })), /points/);
  assert.match(thrown(() => createLimiter({ points: 1, duration: -1 })), /duration/);
  assert.match(thrown(() => createLimiter({ points: 1, duration: 1, burst: 1.5 })), /burst/);
  assert.match(thrown(() => createLimiter({ point: 1, duration: 1 } as never)), /"point".*points/);
});

test.run();
