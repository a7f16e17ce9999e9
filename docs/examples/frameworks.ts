// docs/frameworks.md: a relay mounted in node:http, Express, Connect and Polka. frameworks.test.ts
// runs every function here against real upstreams on 127.0.0.1.
import express from 'express';
import { createRelay } from '@relay/core';
import { relayLifecycle, toConnect } from '@relay/connect-adapter';

export async function expressGateway(authService = 'http://auth-service:8000', port = 8080) {
  const proxy = createRelay({
    targetBaseUrl: authService,
    upstreamPrefix: '/',
    preserveHost: false,
  });

  const app = express();
  app.use('/auth', toConnect(proxy)); // all /auth/** requests proxied
  app.get('/health', (_req, res) => {
    res.send('ok');                   // your own routes stay yours
  });

  const relays = relayLifecycle([proxy]);
  await relays.startup();             // on_startup
  const server = app.listen(port);
  const stop = () => relays.close(server); // on_shutdown
  process.once('SIGTERM', stop);

  // GET  /auth/login    → GET  http://auth-service:8000/login
  // POST /auth/register → POST http://auth-service:8000/register
  return { server, stop };
}

// Each block of docs/frameworks.md shows its own imports (imports are hoisted, wherever they stand).
import http from 'node:http';
import type { Relay } from '@relay/core';

export function nodeHttpServer(proxy: Relay): http.Server {
  // No framework: the relay is the whole server; give it `mountPath: '/auth'` to serve under /auth.
  return http.createServer(proxy.handle);
}

import connect from 'connect';

export function connectServer(proxy: Relay): http.Server {
  const app = connect();
  app.use('/auth', toConnect(proxy));
  return http.createServer(app);
}

import polka from 'polka';

export function polkaServer(proxy: Relay): http.Server {
  const app = polka();
  app.use('/auth', toConnect(proxy));
  return http.createServer(app.handler as http.RequestListener); // or app.listen(8080)
}

import { RelayError } from '@relay/core';
import type { NextFunction, Request, Response } from 'express';

export function expressErrorHandler(proxy: Relay): express.Express {
  const app = express();
  app.use('/auth', toConnect(proxy, { errors: 'next' }));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof RelayError) {
      res.status(err.status).json({ error: err.code }); // ERR_UPSTREAM_UNREACHABLE, ERR_READ_TIMEOUT …
      return;
    }
    next(err);
  });
  return app;
}

export function relayBeforeParsers(proxy: Relay): express.Express {
  const app = express();
  app.use('/auth', toConnect(proxy)); // streams
  app.use(express.json());            // only your own routes below parse
  app.post('/orders', (req, res) => {
    res.json({ received: req.body });
  });
  return app;
}

import { routeUpgrades } from '@relay/connect-adapter';
import { websocket } from '@relay/ws';

export async function gatewayWithChat(authService = 'http://auth-service:8000', chatService = 'http://chat-service:8000', port = 8080) {
  const auth = createRelay({ targetBaseUrl: authService });
  const chat = createRelay({ targetBaseUrl: chatService, websocket: websocket() });

  const app = express();
  app.use('/auth', toConnect(auth));
  app.use('/chat', toConnect(chat));            // HTTP under /chat

  const relays = relayLifecycle({ '/auth': auth, '/chat': chat }); // or [auth, chat]
  await relays.startup();                       // every relay, before listening
  const server = app.listen(port);
  routeUpgrades(server, { '/chat': chat });     // WebSocket under /chat
  // ws://host/chat/room → ws://chat-service:8000/room
  const stop = () => relays.close(server, { timeout: 10_000 });
  process.once('SIGTERM', stop);
  return { server, stop };
}

import http2 from 'node:http2';

export function http2Gateway(proxy: Relay, app: express.Express, tls: { key: Buffer; cert: Buffer }): http2.Http2SecureServer {
  // HTTP/2 and HTTP/1.1 clients on one TLS port. The relay serves both; Express 5 serves only
  // HTTP/1.1 (it throws on HTTP/2 requests before any middleware runs), so HTTP/2 requests for
  // the app's own routes get 505 and browsers retry them over HTTP/1.1.
  return http2.createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => {
    if (/^\/api(?:[/?]|$)/.test(req.url)) return proxy.handle(req, res); // /api, /api?x, /api/…; not /apix
    if (req.httpVersionMajor === 2) return void res.writeHead(505).end();
    app(req as unknown as express.Request, res as unknown as express.Response);
  });
}

export function nextRouteHandlers(proxy: Relay) {
  // app/api/[...path]/route.ts in Next.js (or any Web-standard runtime): every method goes
  // through the relay's stages and transport, bodies streamed both ways.
  const handler = (request: globalThis.Request) => proxy.fetch(request);
  return { GET: handler, POST: handler, PUT: handler, PATCH: handler, DELETE: handler };
}
