import type { AddressInfo } from 'node:net';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, startUpstream } from '@relay/testkit';
import { relayLifecycle, toConnect } from '../src/index.js';

// The package README's Quick Start (the Python guide's Ravyn example in Express), run as
// written except for the upstream URL (a real one on 127.0.0.1) and the port (0).

test('README Quick Start: /auth/** is relayed to the auth service, the app keeps its routes', async () => {
  const authService = await startUpstream();

  // --- README ---
  // Create proxy to auth service
  const proxy = createRelay({
    targetBaseUrl: authService.url, // 'http://auth-service:8000'
    upstreamPrefix: '/',
    preserveHost: false,
  });

  // Mount proxy in your app
  const app = express();
  app.use('/auth', toConnect(proxy)); // All /auth/** requests proxied
  app.get('/', (_req, res) => {
    res.send('my app');
  });

  const relays = relayLifecycle([proxy]);
  await relays.startup(); // on_startup
  const server = app.listen(0); // 8080
  process.once('SIGTERM', () => relays.close(server)); // on_shutdown
  // --- end ---

  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const login = JSON.parse((await fetchRaw(`${base}/auth/login`)).text);
  assert.equal([login.method, login.url], ['GET', '/login']);
  const register = JSON.parse((await fetchRaw(`${base}/auth/register`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).text);
  assert.equal([register.method, register.url, register.body], ['POST', '/register', '{}']);
  assert.is((await fetchRaw(`${base}/`)).text, 'my app');

  const onSigterm = process.listeners('SIGTERM').at(-1)!;
  process.removeListener('SIGTERM', onSigterm); // only the README's own listener
  await relays.close(server);
  assert.is(proxy.state, 'stopped');
  await authService.close();
});

test.run();
