// @relay/observe's access log with a real pino logger (the relay's own logger, a passed one,
// a child, redaction) and pino's sonic-boom destination as a stream.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, serveRelay, waitFor } from '@relay/testkit';
import { accessLog, observe } from '../src/index.js';
import { echoSession, scripted, serveWithUpgrades, startEchoWs } from './helpers.js';

const issueFields = ['method', 'path', 'status', 'bytesIn', 'bytesOut', 'duration', 'ttfb', 'upstream', 'attempts', 'code', 'client', 'requestId'];

/** A pino destination that keeps every line pino wrote. */
function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    stream,
    lines: () => chunks.join('').split('\n').filter((line) => line !== ''),
    parsed: () => chunks.join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

test('pino as the relay logger: every line parses, access line has every field and pino level/time/msg', async () => {
  const upstream = await scripted([503, 200]);
  const out = capture();
  const logger = pino({ level: 'debug' }, out.stream);
  const obs = observe({ requestId: true, accessLog: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt] }));
  const response = await fetchRaw(`${served.url}/items?token=s3cret`, {
    method: 'PUT',
    body: 'hello',
    headers: { 'user-agent': 'ua/1', authorization: 'Bearer secret', 'x-request-id': 'rid-1' },
  });
  assert.is(response.status, 200);
  assert.ok(await waitFor(() => out.parsed().some((line) => line.msg === 'request')));
  await served.close();
  await upstream.close();
  const parsed = out.parsed(); // throws if any line is not JSON
  const line = parsed.find((entry) => entry.msg === 'request')!;
  for (const field of issueFields) assert.ok(field in line, `field ${field} missing`);
  assert.is(line.level, 30);
  assert.type(line.time, 'number');
  assert.is(line.method, 'PUT');
  assert.is(line.path, '/items?token=[REDACTED]');
  assert.is(line.status, 200);
  assert.is(line.bytesIn, 5);
  assert.is(line.bytesOut, 5);
  assert.is(line.attempts, 2);
  assert.is(line.requestId, 'rid-1');
  assert.is(line.upstream, upstream.url);
  assert.is(line.code, null);
  assert.is(line.client, '127.0.0.1');
  assert.equal(line.headers, { 'user-agent': 'ua/1' });
  assert.not.ok(out.lines().join('\n').includes('s3cret'));
  assert.not.ok(out.lines().join('\n').includes('Bearer secret'));
});

test('pino child logger passed as accessLog({ logger }): bindings kept, pino redact paths hold, error code on a refused connection', async () => {
  const port = await closedPort();
  const out = capture();
  const root = pino({ redact: { paths: ['client', 'headers["user-agent"]'], censor: '***' } }, out.stream);
  const child = root.child({ component: 'edge' });
  const log = accessLog({ logger: child, headers: ['user-agent', 'x-forwarded-for'] });
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [log.request, log.attempt] }));
  const response = await fetchRaw(`${served.url}/down`, { headers: { 'user-agent': 'ua/2', 'x-forwarded-for': '203.0.113.9' } });
  assert.is(response.status, 502);
  assert.ok(await waitFor(() => out.parsed().some((line) => line.msg === 'request')));
  await served.close();
  const line = out.parsed().find((entry) => entry.msg === 'request')!;
  assert.is(line.component, 'edge');
  assert.is(line.level, 30);
  assert.is(line.status, 502);
  assert.is(line.code, 'ERR_UPSTREAM_UNREACHABLE');
  assert.is(line.attempts, 1);
  assert.is(line.ttfb, null);
  assert.is(line.client, '***');
  assert.equal(line.headers, { 'user-agent': '***', 'x-forwarded-for': '203.0.113.9' });
});

test('accessLog level warn with a pino logger at warn: the line is written at pino level 40', async () => {
  const upstream = await scripted([200]);
  const out = capture();
  const logger = pino({ level: 'warn' }, out.stream);
  const log = accessLog({ logger, level: 'warn', message: 'access' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  assert.is((await fetchRaw(`${served.url}/a`)).status, 200);
  assert.ok(await waitFor(() => out.parsed().length === 1));
  await served.close();
  await upstream.close();
  const line = out.parsed()[0]!;
  assert.is(line.level, 40);
  assert.is(line.msg, 'access');
});

test('a WebSocket session line through pino', async () => {
  const upstream = await startEchoWs();
  const out = capture();
  const logger = pino(out.stream);
  const log = accessLog({ logger });
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, logger, stages: [log.request, log.attempt] });
  assert.equal(await echoSession(`${served.url}/chat`, ['one', 'two']), ['one', 'two']);
  assert.ok(await waitFor(() => out.parsed().some((line) => line.msg === 'request')));
  await served.close();
  await upstream.close();
  const line = out.parsed().find((entry) => entry.msg === 'request')!;
  assert.is(line.websocket, true);
  assert.is(line.status, 101);
  assert.ok((line.bytesIn as number) > 0 && (line.bytesOut as number) > 0);
});

test('pino.destination (sonic-boom, async) as accessLog({ stream }): one JSON line per request after flush', async () => {
  const upstream = await scripted([200]);
  const dir = mkdtempSync(join(tmpdir(), 'relay-review-'));
  const file = join(dir, 'access.log');
  const destination = pino.destination({ dest: file, sync: false, minLength: 4096 });
  await new Promise<void>((resolve) => destination.once('ready', () => resolve()));
  const log = accessLog({ stream: destination });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  for (let index = 0; index < 5; index++) assert.is((await fetchRaw(`${served.url}/n/${index}`)).status, 200);
  await served.close();
  await upstream.close();
  destination.flushSync();
  await new Promise<void>((resolve) => {
    destination.once('close', () => resolve());
    destination.end();
  });
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
  rmSync(dir, { recursive: true });
  assert.is(lines.length, 5);
  const paths = lines.map((line) => (JSON.parse(line) as { path: string }).path);
  assert.equal(paths, ['/n/0', '/n/1', '/n/2', '/n/3', '/n/4']);
});

test.run();
