// Review s39 (issue 17, @relay/balance). Black-box: setTargets at run time with DNS targets, the health checks'
// connections to a target that left, and a custom resolver's answer that is not an address.
// Real upstreams on 127.0.0.1, real clients; everything opened is closed.
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { delay, fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';
import { named } from './helpers.js';

test('setTargets with a new weight for a DNS target applies it at once, as for a URL target (not at the next lookup)', async () => {
  const pool = balance({
    targets: [{ dns: 'http://app.internal:8000', interval: 60_000 }],
    resolve: async () => ['127.0.0.1', '127.0.0.2'],
  });
  await pool.start();
  assert.equal(pool.targets().map((t) => t.weight), [1, 1]);
  pool.setTargets([{ dns: 'http://app.internal:8000', interval: 60_000, weight: 3 }]);
  assert.equal(pool.targets().map((t) => t.weight), [3, 3], 'the weight given to setTargets');
  pool.stop();
});

test('setTargets with a shorter interval for a DNS target looks the name up on the new interval', async () => {
  let records = ['127.0.0.1'];
  let lookups = 0;
  const pool = balance({
    targets: [{ dns: 'http://app.internal:8000', interval: 600_000 }],
    resolve: async () => {
      lookups++;
      return records;
    },
  });
  await pool.start();
  assert.is(lookups, 1);
  pool.setTargets([{ dns: 'http://app.internal:8000', interval: 50 }]);
  records = ['127.0.0.2'];
  const seen = await waitFor(() => pool.targets()[0]?.url === 'http://127.0.0.2:8000', 3_000);
  pool.stop();
  assert.ok(seen, `the record change was not seen within 3 s of setting interval: 50 (${lookups} lookups)`);
});

test('setTargets from URL targets to a DNS target: requests during its first lookup are not answered 503 ERR_NO_TARGET', async () => {
  const up = await named('up');
  const pool = balance({
    targets: [up.url],
    resolve: async () => {
      await delay(300);
      return ['127.0.0.1'];
    },
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  assert.is((await fetchRaw(served.url)).status, 200);
  // A config reload moves the pool to discovery by DNS: the same upstream, now by name.
  pool.setTargets([{ dns: `http://app.internal:${up.port}` }]);
  const answer = await fetchRaw(served.url);
  pool.stop();
  await served.close();
  await up.close();
  assert.is(answer.status, 200, `got ${answer.status} ${answer.text.trim()}`);
});

test("a target removed by setTargets keeps no health-check connection open (the checks' keep-alive socket to it is closed)", async () => {
  const open = new Set<Socket>();
  const a = await startUpstream((_req, res) => res.end('a'));
  a.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  const b = await startUpstream((_req, res) => res.end('b'));
  const pool = balance({ targets: [a.url, b.url], healthCheck: { path: '/health', interval: 50 } });
  await pool.start();
  assert.ok(await waitFor(() => a.requests.length >= 2, 3_000), 'a was checked');
  assert.ok(open.size >= 1, 'the checks keep a connection to a');
  pool.setTargets([b.url]);
  const closed = await waitFor(() => open.size === 0, 3_000);
  const checks = a.requests.length;
  await delay(200);
  pool.stop();
  await a.close();
  await b.close();
  assert.is(a.requests.length, checks, 'no check of a after it left');
  assert.ok(closed, `${open.size} health-check connection(s) to the removed target still open 3 s after setTargets`);
});

test("a resolver answer that is not an address is a failed lookup: the previous addresses stay, and nothing rejects unhandled (node would exit)", async () => {
  // A custom resolve (Consul, a service registry) that once answers "10.0.0.1:8080" or a name with a space: the README
  // says a failed lookup keeps the previous addresses. Today the TypeError from parsing the address escapes the
  // interval's `void this.refresh()` as an unhandled rejection, which ends a node 20 process.
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  let records = ['127.0.0.1'];
  const pool = balance({ targets: [{ dns: 'http://app.internal:8000', interval: 30 }], resolve: async () => records });
  await pool.start();
  records = ['10.0.0.1:8080'];
  await delay(200);
  records = ['bad host name'];
  await delay(200);
  pool.stop();
  await delay(50);
  process.off('unhandledRejection', onRejection);
  assert.equal(pool.targets().map((t) => t.url), ['http://127.0.0.1:8000'], 'the previous address stays');
  assert.is(rejections.length, 0, `unhandled rejections: ${rejections.slice(0, 2).map(String).join('; ')}`);
});

test.run();
