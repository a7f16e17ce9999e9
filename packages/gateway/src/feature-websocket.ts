import { websocket } from '@relay/ws';
import { z } from 'zod';
import { routeFeature } from './feature.js';

const bytes = z.number().int().nonnegative();

/**
 * `websocket:` on a route: `true` (the default), `false` (upgrades get 501), or the options of `websocket()`.
 *
 * @example
 * websocketSchema.parse({ idleTimeout: 60000 });
 */
const messageLimit = z.object({ maxMessageBytes: bytes, messagesPerSecond: z.number().positive(), burst: bytes }).partial().strict();

/** Every `websocket()` option a file can say: all but the hooks and the deadline, which are code. */
export const websocketSchema = z.union([
  z.boolean(),
  z
    .object({
      maxPayload: bytes,
      highWaterMark: bytes,
      idleTimeout: bytes,
      closeTimeout: bytes,
      perMessageDeflate: z.boolean(),
      maxFragments: bytes,
      limits: z.object({ client: messageLimit, upstream: messageLimit, session: messageLimit }).partial().strict(),
    })
    .partial()
    .strict(),
]);

/**
 * The `websocket` route key → the relay's WebSocket transport from `@relay/ws`. On by default, as
 * in Caddy and Traefik: a route relays upgrades unless it says `websocket: false`.
 *
 * @example
 * // websocket: { idleTimeout: 600000 }
 */
export const websocketFeature = routeFeature({
  key: 'websocket',
  schema: websocketSchema.default(true),
  apply(value, parts) {
    if (value === false) return;
    parts.websocket = websocket(value === true ? {} : value);
  },
});
