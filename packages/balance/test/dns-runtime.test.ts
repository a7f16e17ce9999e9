// DNS targets at run time: setTargets changing a name's weight or interval, moving a pool from URL targets to a
// name (the previous targets serve until its first lookup ended), and a resolver answer that is not an address.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { delay, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';

test('setTargets with a new weight for a DNS target applies it to its addresses at once, as for a URL target (not at the next lookup)', async () => {
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

test('setTargets from URL targets to a DNS target: the URL targets serve until the first lookup of the name ended, then its addresses', async () => {
  // The Host header tells the two apart: the URL target is asked as 127.0.0.1:port, the name's address as app.internal:port.
  const up = await startUpstream((req, res) => res.end(String(req.headers.host)));
  let answered = false;
  const pool = balance({
    targets: [up.url],
    resolve: async () => {
      await delay(300);
      answered = true;
      return ['127.0.0.1'];
    },
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  assert.is((await fetchRaw(served.url)).status, 200);
  // A config reload moves the pool to discovery by DNS: the same upstream, now by name.
  pool.setTargets([{ dns: `http://app.internal:${up.port}` }]);
  const during = await fetchRaw(served.url);
  const listed = pool.targets().map((t) => t.url);
  const lookedUp = await waitFor(() => answered && pool.targets()[0]?.dns !== undefined, 3_000);
  const after = await fetchRaw(served.url);
  pool.stop();
  await served.close();
  await up.close();
  assert.equal([during.status, during.text], [200, `127.0.0.1:${up.port}`], 'during the lookup: the URL target, not 503 ERR_NO_TARGET');
  assert.equal(listed, [up.url], 'targets() lists what serves');
  assert.ok(lookedUp, 'the name is the target once looked up');
  assert.equal([after.status, after.text], [200, `app.internal:${up.port}`], "after the lookup: the name's address");
});

test('setTargets to a DNS target whose first lookup fails: the switch still happens (the failure is the answer), as Envoy ends a warming', async () => {
  const up = await startUpstream();
  const pool = balance({
    targets: [up.url],
    resolve: async () => {
      await delay(100);
      throw new Error('SERVFAIL');
    },
  });
  await pool.start();
  pool.setTargets([{ dns: `http://app.internal:${up.port}` }]);
  assert.equal(pool.targets().map((t) => t.url), [up.url], 'during the lookup');
  assert.ok(await waitFor(() => pool.targets().length === 0, 3_000), 'after the failed lookup, the new list (no address) is the pool');
  pool.stop();
  await up.close();
});

test("a resolver answer that is not an address is a failed lookup: the previous addresses stay, it is logged, and nothing rejects unhandled (node would exit)", async () => {
  // A custom resolve (Consul, a service registry) that once answers "10.0.0.1:8080" or a name with a space: the README
  // says a failed lookup keeps the previous addresses. Parsing such an answer as an address threw outside the lookup's
  // try/catch, an unhandled rejection from the interval's lookup.
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  const logger = memoryLogger();
  let records: unknown[] = ['127.0.0.1'];
  const pool = balance({ targets: [{ dns: 'http://app.internal:8000', interval: 30 }], resolve: async () => records as string[] });
  createRelay({ targetBaseUrl: 'http://127.0.0.1:8000', stages: [pool], logger });
  await pool.start();
  records = ['10.0.0.1:8080'];
  await delay(200);
  records = ['bad host name'];
  await delay(200);
  records = [42];
  await delay(200);
  pool.stop();
  await delay(50);
  process.off('unhandledRejection', onRejection);
  assert.equal(pool.targets().map((t) => t.url), ['http://127.0.0.1:8000'], 'the previous address stays');
  assert.is(rejections.length, 0, `unhandled rejections: ${rejections.slice(0, 2).map(String).join('; ')}`);
  const warned = logger.lines.filter((line) => line.message === 'balance: DNS lookup failed, keeping the previous addresses').map((line) => String(line.fields.error));
  for (const answer of ['"10.0.0.1:8080"', '"bad host name"', '42']) assert.ok(warned.some((error) => error.includes(answer)), `a warn naming ${answer}: ${warned.slice(0, 3).join('; ')}`);
});

test('pool.start() resolves when the first resolver answer is not an address (a failed lookup, not a rejection)', async () => {
  const pool = balance({ targets: [{ dns: 'http://app.internal:8000', interval: 60_000 }], resolve: async () => ['app.other'] });
  await pool.start();
  assert.equal(pool.targets(), []);
  pool.stop();
});

test.run();
