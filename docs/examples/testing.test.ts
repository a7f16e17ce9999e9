// The Python guide's "In-Memory Testing" example, in TypeScript. docs/testing.md shows this file;
// the test runner executes it like any other test, so the guide cannot drift from the code.
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, inMemoryTransport } from '@relay/core';

// Create the upstream app: any node:http request listener (an Express app works the same way).
const upstreamApp: RequestListener = (req, res) => {
  if (req.method === 'GET' && req.url === '/test') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ message: 'Hello from upstream' }));
    return;
  }
  res.statusCode = 404;
  res.end();
};

// Create the proxy with the in-memory transport: the upstream runs in this process, no port.
const proxy = createRelay({
  targetBaseUrl: 'http://upstream',
  mountPath: '/proxy',
  transport: inMemoryTransport(upstreamApp),
});

test('GET /proxy/test is answered by the upstream app', async () => {
  await proxy.startup(); // on_startup
  const app = createServer(proxy.handle); // the gateway under test, on a free local port
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = app.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/proxy/test`);
    assert.is(response.status, 200);
    assert.equal(await response.json(), { message: 'Hello from upstream' });
  } finally {
    app.closeAllConnections();
    app.close();
    await proxy.shutdown(); // on_shutdown
  }
});

test.run();
