// docs/testing.md, "Testing failure paths": an in-memory upstream that fails the way a real
// service does, and a logger that keeps its lines for the assertions.
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, inMemoryTransport, type Logger } from '@relay/core';

const upstreamApp: RequestListener = (req, res) => {
  if (req.url === '/crash') req.socket.destroy();                  // the service dies mid-request
  else if (req.url === '/hang') return;                            // the service never answers
  else if (req.url === '/throw') throw new Error('database is down'); // a bug in the service
  else if (req.url === '/garbage') req.socket.end('HTTP/1.1 nonsense\r\n\r\n'); // not HTTP
  else res.end('fine');
};

const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
const logger: Logger = {
  debug: (fields, message) => lines.push({ level: 'debug', fields, message }),
  info: (fields, message) => lines.push({ level: 'info', fields, message }),
  warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
  error: (fields, message) => lines.push({ level: 'error', fields, message }),
};

const proxy = createRelay({
  targetBaseUrl: 'http://upstream',
  transport: inMemoryTransport(upstreamApp),
  timeout: { read: 200 }, // small, so the hanging case fails fast
  logger,
});

test('each failure of the upstream reaches the client as the status a real one would', async () => {
  await proxy.startup();
  const app = createServer(proxy.handle);
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  try {
    assert.is((await fetch(`${base}/ok`)).status, 200);

    const crash = await fetch(`${base}/crash`);
    assert.is(crash.status, 502);
    assert.match(await crash.text(), 'ERR_UPSTREAM_RESET');

    const hang = await fetch(`${base}/hang`);
    assert.is(hang.status, 504);
    assert.match(await hang.text(), 'ERR_READ_TIMEOUT');

    const garbage = await fetch(`${base}/garbage`);
    assert.is(garbage.status, 502);
    assert.match(await garbage.text(), 'ERR_UPSTREAM_PROTOCOL');

    const thrown = await fetch(`${base}/throw`);
    assert.is(thrown.status, 502);
    assert.not.match(await thrown.text(), 'database', 'the client never sees the detail');
    assert.ok(lines.some((line) => line.level === 'error' && JSON.stringify(line.fields).includes('database is down')), 'the log does');
  } finally {
    app.closeAllConnections();
    app.close();
    await proxy.shutdown();
  }
});

test.run();
