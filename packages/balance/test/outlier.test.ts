import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, memoryLogger, serveRelay, waitFor } from '@relay/testkit';
import { balance, type TargetEvent } from '../src/index.js';
import { countBy, load, named } from './helpers.js';

test('one upstream killed under load (retry outside): zero failed client requests, it is ejected, and it returns after its period', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  const events: TargetEvent[] = [];
  const logger = memoryLogger();
  const pool = balance({
    targets: ups.map((up) => up.url),
    outlier: { consecutiveFailures: 3, baseEjectionTime: 300, maxEjectionTime: 1000 },
    onStateChange: (event) => events.push(event),
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [retry({ maxRetries: 2, backoffFactor: 1 }), pool], logger }));
  const port = ups[2]!.port;
  const running = load(served.url, 3000, 50);
  await waitFor(() => ups[2]!.requests.length > 100, 10_000);
  await ups[2]!.close();
  const hits = await running;
  assert.equal(hits.filter((hit) => hit.status !== 200).length, 0, 'no failed client request');
  assert.ok(events.some((event) => event.url === ups[2]!.url && event.change === 'ejected'), 'c was ejected');
  assert.ok(logger.lines.some((line) => line.message === 'balance: target ejected'));
  assert.ok(await waitFor(() => pool.targets().every((target) => target.inFlight === 0), 2_000), 'every attempt released, retried-past ones too');
  // Back on the same port: after its ejection it takes requests again.
  const back = createServer((_req, res) => res.setHeader('x-upstream', 'c-again').end('c-again'));
  await new Promise<void>((resolve) => back.listen(port, '127.0.0.1', resolve));
  const c = () => pool.targets().find((target) => target.url === ups[2]!.url)!;
  assert.ok(await waitFor(() => c().ejectedUntil === 0, 5_000), 'its ejection ends after its period');
  const later = countBy(await load(served.url, 60, 3));
  assert.ok(events.some((event) => event.url === ups[2]!.url && event.change === 'returned'));
  assert.ok((later['c-again'] ?? 0) > 0, `the returned target serves again: ${JSON.stringify(later)}`);
  await served.close();
  await new Promise((resolve) => back.close(resolve));
  back.closeAllConnections();
  await Promise.all(ups.slice(0, 2).map((up) => up.close()));
});

test('ejections grow with each one (base × count); maxEjectionPercent caps how many are out at once', async () => {
  const alive = await named('alive');
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const pool = balance({ targets: [alive.url, dead], outlier: { consecutiveFailures: 2, baseEjectionTime: 300 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: alive.url, stages: [pool] }));
  const deadState = () => pool.targets().find((target) => target.url === dead)!;
  await load(served.url, 4, 1);
  assert.is(deadState().ejections, 1);
  assert.ok(deadState().ejectedUntil - Date.now() > 150, 'the first ejection lasts about 300 ms');
  const hits = await load(served.url, 20, 1);
  assert.ok(hits.every((hit) => hit.upstream === 'alive'), 'an ejected target gets no request');
  assert.ok(await waitFor(() => deadState().ejectedUntil === 0, 3_000), 'it returns after its period');
  await load(served.url, 4, 1);
  assert.is(deadState().ejections, 2, 'still failing: ejected again');
  assert.ok(deadState().ejectedUntil - Date.now() > 450, 'the second ejection lasts about 600 ms');
  await served.close();

  const dead2 = `http://127.0.0.1:${await closedPort()}`;
  const capped = balance({ targets: [alive.url, dead, dead2], outlier: { consecutiveFailures: 2, baseEjectionTime: 10_000, maxEjectionPercent: 34 } });
  const served2 = await serveRelay(createRelay({ targetBaseUrl: alive.url, stages: [capped] }));
  await load(served2.url, 30, 1);
  assert.is(capped.targets().filter((target) => target.ejectedUntil > 0).length, 1, 'one of three at most (34 %)');
  await served2.close();
  await alive.close();
});

test('outlier: false turns ejection off; 5xx statuses count as configured', async () => {
  const bad = await named('bad');
  bad.server.removeAllListeners('request');
  bad.server.on('request', (_req, res) => {
    res.statusCode = 500;
    res.end('broken');
  });
  const good = await named('good');
  for (const [outlier, expectEjected] of [[false, false], [{ consecutiveFailures: 2, statuses: [500] }, true]] as const) {
    const pool = balance({ targets: [bad.url, good.url], outlier });
    const served = await serveRelay(createRelay({ targetBaseUrl: good.url, stages: [pool] }));
    await load(served.url, 10, 1);
    assert.is(pool.targets()[0]!.ejectedUntil > 0, expectEjected, JSON.stringify(outlier));
    await served.close();
  }
  await bad.close();
  await good.close();
});

test('a retry avoids the target its previous attempt failed on, even where hashing would pick it again', async () => {
  const alive = await named('alive');
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const pool = balance({ targets: [alive.url, dead], strategy: 'hash', hashKey: { header: 'x-user' }, outlier: false });
  const served = await serveRelay(createRelay({ targetBaseUrl: alive.url, stages: [retry({ maxRetries: 1, backoffFactor: 1 }), pool] }));
  const hits = await load(served.url, 40, 4, (index) => ({ 'x-user': `user-${index}` }));
  assert.equal(countBy(hits), { alive: 40 }, 'keys of the dead target were retried on the live one');
  assert.is(pool.targets()[1]!.ejectedUntil, 0, 'outlier: false ejects nothing');
  await served.close();
  await alive.close();
});

test('an ejected target that comes back is returned by the health checks, long before its ejection period ends', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  const events: TargetEvent[] = [];
  const pool = balance({
    targets: ups.map((up) => up.url),
    outlier: { consecutiveFailures: 2, baseEjectionTime: 60_000, maxEjectionTime: 60_000 },
    healthCheck: { path: '/', interval: 100, timeout: 500, healthyThreshold: 1, unhealthyThreshold: 1 },
    onStateChange: (event) => events.push(event),
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [retry({ maxRetries: 2, backoffFactor: 1 }), pool] }));
  const port = ups[2]!.port;
  await ups[2]!.close();
  const hits = await load(served.url, 60, 3);
  assert.equal(hits.filter((hit) => hit.status !== 200).length, 0, 'retry hid the dead target');
  const c = () => pool.targets().find((target) => target.url === ups[2]!.url)!;
  assert.ok(await waitFor(() => c().ejectedUntil > 0 || c().healthy === false, 3_000), 'c was taken out');
  const started = Date.now();
  const back = createServer((_req, res) => res.setHeader('x-upstream', 'c-again').end('c-again'));
  await new Promise<void>((resolve) => back.listen(port, '127.0.0.1', resolve));
  assert.ok(await waitFor(() => c().healthy === true && c().ejectedUntil === 0, 5_000), 'a passing health check returned it');
  assert.ok(Date.now() - started < 10_000, 'well within the 60 s ejection');
  const later = countBy(await load(served.url, 60, 3));
  assert.ok((later['c-again'] ?? 0) > 0, `it serves again: ${JSON.stringify(later)}`);
  pool.stop();
  await served.close();
  await new Promise((resolve) => back.close(resolve));
  back.closeAllConnections();
  await Promise.all(ups.slice(0, 2).map((up) => up.close()));
});

test.run();
