import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { jsonLogger, loggedRelay } from './logging.js';

function collector() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
}

test('an unreachable upstream: one retry line, one failure line per attempt, with the detail the client never sees', async () => {
  const { lines, write } = collector();
  const port = await closedPort();
  const gateway = await serveRelay(loggedRelay(`http://127.0.0.1:${port}`, jsonLogger('info', write)));
  const response = await fetchRaw(`${gateway.url}/items?page=2`);
  assert.is(response.status, 502);
  assert.not.match(response.text, String(port));
  await gateway.close();

  const failures = lines.filter((line) => line.msg === 'upstream request failed');
  assert.equal(failures.map((line) => [line.level, line.method, line.url, line.attempt, line.code]), [
    ['warn', 'GET', `http://127.0.0.1:${port}/items`, 1, 'ERR_UPSTREAM_UNREACHABLE'],
    ['warn', 'GET', `http://127.0.0.1:${port}/items`, 2, 'ERR_UPSTREAM_UNREACHABLE'],
  ]);
  assert.match(String(failures[0]!.error), 'ECONNREFUSED');
  const retries = lines.filter((line) => line.msg === 'retrying upstream request');
  assert.equal(retries.map((line) => [line.level, line.attempt, line.reason, typeof line.delay, line.retryAfter]), [['info', 1, 'ERR_UPSTREAM_UNREACHABLE', 'number', false]]);
  assert.not.ok(lines.some((line) => String(line.url).includes('page=2')), 'no line carries the query (logQuery is off)');
  assert.ok(lines.every((line) => typeof line.time === 'number'));
});

test('a refused path is a warn line; debug lines are dropped below the minimum level', async () => {
  const info = collector();
  const debug = collector();
  const upstream = await startUpstream();
  for (const { write } of [info, debug]) {
    const gateway = await serveRelay(loggedRelay(upstream.url, jsonLogger(write === info.write ? 'info' : 'debug', write)));
    await sendRaw(gateway.port, 'GET /a/..%2f..%2fetc HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    await gateway.close();
  }
  const refused = info.lines.find((line) => line.code === 'ERR_BAD_PATH')!;
  assert.equal([refused.level, refused.method, refused.path], ['warn', 'GET', '/a/..%2f..%2fetc']);
  assert.match(String(refused.msg), 'unsafe request path');
  assert.not.ok(info.lines.some((line) => line.level === 'debug'));
  assert.ok(debug.lines.some((line) => line.level === 'debug' && line.msg === 'relay started'));
  await upstream.close();
});

test.run();
