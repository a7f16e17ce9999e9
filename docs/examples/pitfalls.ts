// docs/pitfalls.md: each pitfall, wrong and right. pitfalls.test.ts shows what goes wrong with the
// first and that the second fixes it, against real upstreams.
import http from 'node:http';
import express from 'express';
import { WebSocketServer } from 'ws';
import { createRelay, type Relay } from '@relay/core';
import { relayLifecycle, routeUpgrades, toConnect } from '@relay/connect-adapter';
import { cookies } from '@relay/cookies';
import { websocket } from '@relay/ws';

export function forgotShutdown(authService = 'http://auth:8000', port = 8080) {
  // Wrong - no shutdown: in-flight requests are cut and upstream connections stay open
  const proxy = createRelay({ targetBaseUrl: authService });
  const app = express();
  app.use('/auth', toConnect(proxy));
  const server = app.listen(port);
  const stop = () => server.close();
  process.once('SIGTERM', stop);
  return { server, stop };
}

export async function withLifecycle(authService = 'http://auth:8000', port = 8080) {
  // Correct
  const proxy = createRelay({ targetBaseUrl: authService });
  const app = express();
  app.use('/auth', toConnect(proxy));
  const relays = relayLifecycle([proxy]);
  await relays.startup();                  // on_startup
  const server = app.listen(port);
  const stop = () => relays.close(server); // on_shutdown
  process.once('SIGTERM', stop);
  return { server, stop };
}

export function wrongPrefix(api = 'http://api:8000'): Relay {
  // Wrong - upstream expects /api/v1/users
  return createRelay({
    targetBaseUrl: api,
    upstreamPrefix: '/',
  });
  // /users → http://api:8000/users (404!)
}

export function rightPrefix(api = 'http://api:8000'): Relay {
  // Correct
  return createRelay({
    targetBaseUrl: api,
    upstreamPrefix: '/api/v1',
  });
  // /users → http://api:8000/api/v1/users
}

export function cookieDomainWrong(authService = 'http://auth:8000'): Relay {
  // Wrong - upstream sets Domain=auth.example.com, but the app is at api.example.com
  return createRelay({ targetBaseUrl: authService });
}

export function cookieDomainRight(authService = 'http://auth:8000'): Relay {
  // Correct
  return createRelay({
    targetBaseUrl: authService,
    stages: [cookies({ rewriteDomain: () => '' })], // bind to the current host
  });
}

export function parserBeforeRelay(proxy: Relay): express.Express {
  // Wrong - express.json() reads /auth bodies first: the upstream gets JSON.stringify(req.body),
  // not the client's bytes, and nothing streams
  const app = express();
  app.use(express.json());
  app.use('/auth', toConnect(proxy));
  return app;
}

export function missingWebSocketTransport(chatService = 'http://chat:8000'): Relay {
  // Wrong - no websocket transport: every upgrade gets 501 (ERR_UPGRADE_UNSUPPORTED)
  return createRelay({ targetBaseUrl: chatService });
}

export function withWebSocketTransport(chatService = 'http://chat:8000'): Relay {
  // Correct
  return createRelay({ targetBaseUrl: chatService, websocket: websocket() });
}

export function ownWebSocketServerWrong(server: http.Server): WebSocketServer {
  // Wrong - answers 400 to every upgrade outside /live, the relays' included
  return new WebSocketServer({ server, path: '/live' });
}

export function ownWebSocketServerRight(server: http.Server, relays: Record<string, Relay>): WebSocketServer {
  // Correct - noServer, one upgrade listener for your own path, the relays' mounts for theirs
  const live = new WebSocketServer({ noServer: true });
  const routes = routeUpgrades(server, relays);
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0]!.toLowerCase();
    if (path === '/live') live.handleUpgrade(req, socket, head, (ws) => live.emit('connection', ws, req));
    else if (!routes.mountPaths.some((mount) => path === mount || path.startsWith(`${mount}/`))) socket.destroy(); // nobody's
  });
  return live;
}
