// The demo gateway (`pnpm demo`): one public Express app with two relays in front of private
// services it starts itself.
//
//   /auth/**  → the auth service: cookies() rewrites its Set-Cookie Domain, retry() hides a failed
//               attempt, and WebSocket upgrades are relayed too
//   /chat/**  → the chat service: WebSocket rooms through websocket() and routeUpgrades
//   /, /healthz → the app's own routes
//
// Environment:
//   PORT=8080                              the gateway's port (0 picks a free one)
//   HOST=127.0.0.1                         the address it listens on
//   UPSTREAM_URL=http://127.0.0.1:9000     send /auth/** (HTTP and WebSocket) to your own service instead
//                                          of the embedded auth service; /chat stays on the embedded one
//
// Ctrl-C (SIGINT) or SIGTERM: in-flight requests finish, relayed WebSockets close with 1001, the
// embedded services stop, and the process exits with code 0.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createRelay, gatewayServerOptions, type Logger } from '@relay/core';
import { relayLifecycle, routeUpgrades, toConnect } from '@relay/connect-adapter';
import { cookies } from '@relay/cookies';
import { retry } from '@relay/retry';
import { websocket } from '@relay/ws';
import { startAuthService, startChatService, type Service } from './services.js';

/** Relay's log lines, one per line: info to stdout (retries show up here), warn and error to stderr. */
const logger: Logger = {
  debug: () => {},
  info: (fields, message) => console.log(`[relay] ${message} ${JSON.stringify(fields)}`),
  warn: (fields, message) => console.warn(`[relay] ${message} ${JSON.stringify(fields)}`),
  error: (fields, message) => console.error(`[relay] ${message} ${JSON.stringify(fields)}`),
};

const started: Service[] = [];
let server: Server | null = null;
let stopping: Promise<void> | null = null;
let close: (() => Promise<void>) | null = null;

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`PORT must be a port number, got "${process.env.PORT}"`);
  const host = process.env.HOST ?? '127.0.0.1';
  const ownUpstream = process.env.UPSTREAM_URL;

  const authService = ownUpstream === undefined ? await startAuthService() : null;
  if (authService !== null) started.push(authService);
  const chatService = await startChatService();
  started.push(chatService);

  const auth = createRelay({
    targetBaseUrl: ownUpstream ?? authService!.url, // a bad UPSTREAM_URL throws here, naming targetBaseUrl
    timeout: { connect: 2_000, read: 10_000 },
    logger,
    stages: [
      cookies({ rewriteDomain: () => '' }),          // Domain=auth.internal → a cookie for the gateway's host
      retry({ maxRetries: 2, backoffFactor: 100 }),  // 502/503/504 and connection failures, idempotent methods
    ],
    websocket: websocket(),
  });
  const chat = createRelay({
    targetBaseUrl: chatService.url,
    timeout: { connect: 2_000, read: 10_000 },
    logger,
    websocket: websocket({ idleTimeout: 10 * 60_000 }),
  });

  const app = express();
  app.disable('x-powered-by'); // a gateway names no framework
  app.get('/', (_req, res) => {
    res.type('text/plain').send('Relay demo gateway: /auth/** and /chat/** are relayed; see the terminal for commands to try\n');
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.use('/auth', toConnect(auth));
  app.use('/chat', toConnect(chat));

  const relays = relayLifecycle({ '/auth': auth, '/chat': chat });
  await relays.startup();
  const gateway = createServer({ ...gatewayServerOptions }, app);
  server = gateway;
  routeUpgrades(gateway, { '/auth': auth, '/chat': chat });
  close = () => relays.close(gateway, { timeout: 5_000 });
  await new Promise<void>((resolve, reject) => {
    gateway.once('error', reject);
    gateway.listen(port, host, resolve);
  });

  const { port: actualPort } = gateway.address() as AddressInfo;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const base = `http://${shown}:${actualPort}`;
  const ws = base.replace('http:', 'ws:');
  const jar = '/tmp/relay-demo.cookies';
  console.log(`Relay demo gateway on ${base}`);
  console.log(
    ownUpstream === undefined
      ? `  /auth/**    → embedded auth service ${authService!.url} (cookies() drops Domain=auth.internal, retry() retries 502/503/504)`
      : `  /auth/**    → ${ownUpstream} (your UPSTREAM_URL: HTTP and WebSocket)`,
  );
  console.log(`  /chat/**    → embedded chat service ${chatService.url.replace('http:', 'ws:')} (WebSocket rooms; GET /chat/rooms lists them)`);
  console.log('  /, /healthz → the gateway itself');
  const tries: Array<[command: string, note: string]> = [];
  if (ownUpstream === undefined) {
    tries.push([`curl -i -c ${jar} -d user=ada ${base}/auth/login`, 'Set-Cookie without Domain=auth.internal']);
    tries.push([`curl -i -b ${jar} ${base}/auth/me`, 'the jar kept the cookie: it is for this host now']);
    tries.push([`curl -i ${base}/auth/flaky`, 'every other call fails upstream; retry() answers 200']);
  } else {
    tries.push([`curl -i ${base}/auth/`, 'GET / on your service']);
  }
  tries.push([`curl -i --path-as-is ${base}/auth/../secret`, '400: a request never leaves the prefix']);
  tries.push([`npx wscat -c ${ws}/chat/lobby`, 'an interactive WebSocket client']);
  const width = Math.max(...tries.map(([command]) => command.length)) + 2;
  console.log('Try:');
  for (const [command, note] of tries) console.log(`  ${command.padEnd(width)}# ${note}`);
  console.log('  or, without installing anything (ws comes with this repository):');
  console.log(`  node -e "const ws = new (require('ws'))('${ws}/chat/lobby'); ws.on('message', (m) => console.log(String(m))); ws.on('open', () => { ws.send('hello'); setTimeout(() => ws.close(), 500); })"`);
  console.log('Ctrl-C stops it.');
}

async function shutdown(signal: string): Promise<void> {
  console.log(`\n${signal}: stopping (in-flight requests finish, WebSockets close with 1001)`);
  // A safety net only: everything below closes, and the process then exits on its own.
  setTimeout(() => {
    console.error('demo: still running 15 s after the signal; exiting');
    process.exit(1);
  }, 15_000).unref();
  if (close !== null) await close();
  else server?.close();
  await Promise.all(started.map((service) => service.close()));
  console.log('stopped');
}

function onSignal(signal: NodeJS.Signals): void {
  stopping ??= shutdown(signal).catch((error: unknown) => {
    console.error(`demo: shutdown failed: ${(error as Error).message}`);
    process.exitCode = 1;
  });
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

try {
  await main();
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  console.error(`demo: ${code === 'EADDRINUSE' ? `port ${process.env.PORT ?? 8080} is in use; set PORT to another one (PORT=0 picks a free one)` : (error as Error).message}`);
  process.exitCode = 1;
  await Promise.all(started.map((service) => service.close()));
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
}
