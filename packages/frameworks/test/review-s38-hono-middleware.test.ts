// Review s38d: relayHandler behind Hono middleware, as docs/frameworks.md shows it (cors(), requestId()).
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { delay, memoryLogger, startUpstream } from '@relay/testkit';
import { relayHandler, type NodeEnv } from '../src/hono.js';

test('Hono: with a middleware before relayHandler (cors(), or any `await next()`), @hono/node-server logs no ERR_HTTP_HEADERS_SENT for the relayed answers (as with no middleware)', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  await relay.startup();
  const app = new Hono<NodeEnv>();
  app.use('/api/*', cors());
  app.use('/api/*', async (_c, next) => {
    await next(); // a timer or logger middleware
  });
  const toApi = relayHandler(relay, { prefix: '/api' });
  app.all('/api', toApi);
  app.all('/api/*', toApi);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const errors: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void errors.push(args[0]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const get = () =>
    new Promise<{ status: number; cors: unknown }>((resolve, reject) => {
      const req = http.request(`${url}/api/users?id=1`, { agent, headers: { origin: 'http://app.example' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cors: res.headers['access-control-allow-origin'] }));
      });
      req.on('socket', (socket) => sockets.add(socket));
      req.on('error', reject);
      req.end();
    });
  try {
    assert.equal(await get(), { status: 200, cors: '*' });
    await delay(100);
    assert.equal(await get(), { status: 200, cors: '*' });
    await delay(100);
  } finally {
    console.error = consoleError;
    agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await relay.shutdown();
    await upstream.close();
  }
  assert.is(sockets.size, 1, 'the relayed answer left its keep-alive connection usable');
  assert.equal(errors.map((error) => (error as { code?: string }).code ?? String(error)), [], 'nothing logged for a relayed GET');
  assert.equal(upstream.requests.map((r) => r.url), ['/users?id=1', '/users?id=1']);
});

test.run();
