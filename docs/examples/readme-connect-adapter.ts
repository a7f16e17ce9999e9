// The example of packages/connect-adapter/README.md. package-readmes.test.ts runs it against a real upstream
// on 127.0.0.1, on port 0 instead of 8080.
import type { Express } from 'express';
import type { Relay } from '@relay/core';
import { routeUpgrades } from '@relay/connect-adapter';

export function upgradesExample(app: Express, chat: Relay, auth: Relay, port = 8080) {
  const server = app.listen(port);
  routeUpgrades(server, { '/chat': chat, '/auth': auth });
  // ws://host/chat/room → chat relay, upstream path /room, X-Forwarded-Prefix: /chat
  return server;
}
