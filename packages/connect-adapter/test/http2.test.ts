import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import connect from 'connect';
import polka from 'polka';
import polkaNext from 'polka-next';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { startUpstream } from '@relay/testkit';
import { toConnect } from '../src/index.js';

// Issue 15: toConnect behind an HTTP/2 server (Connect and Polka; Express 5 throws on HTTP/2
// requests before any middleware runs, see docs/frameworks.md).

type Listener = Parameters<typeof http2.createServer>[0] & object;

async function h2Get(port: number, path: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ':method': 'GET', ':path': path });
      let body = '';
      let status = 0;
      stream.setEncoding('utf8');
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
    });
  } finally {
    session.close();
  }
}

const apps: Array<[string, (middleware: ReturnType<typeof toConnect>) => Listener]> = [
  ['Connect 3', (middleware) => connect().use('/auth', middleware) as unknown as Listener],
  ['Polka 0.5', (middleware) => polka().use('/auth', middleware).handler as unknown as Listener],
  ['Polka 1.0.0-next', (middleware) => polkaNext().use('/auth', middleware).handler as unknown as Listener],
];

for (const [name, makeApp] of apps) {
  test(`${name} on http2.createServer: a mounted relay answers HTTP/2 clients`, async () => {
    const upstream = await startUpstream();
    const relay = createRelay({ targetBaseUrl: upstream.url });
    const server = http2.createServer(makeApp(toConnect(relay)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const answer = await h2Get(port, '/auth/login?next=%2F');
    assert.is(answer.status, 200, answer.body);
    assert.is(upstream.requests[0]!.url, '/login?next=%2F');
    assert.is(upstream.requests[0]!.headers['x-forwarded-prefix'], '/auth');
    assert.is((await h2Get(port, '/auth/..%2fadmin')).status, 400);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown();
    await upstream.close();
  });
}

test.run();
