// The examples of docs/limits.md and packages/limits/README.md. limits.test.ts runs each against a
// real upstream on 127.0.0.1 (and a real redis-server for the shared store).
import http from 'node:http';
import { Redis } from 'ioredis';
import { createRelay, type Logger, type Relay } from '@relay/core';
import { concurrencyLimit, createLimiter, rateLimit } from '@relay/limits';
import { redisStore } from '@relay/limits/redis';
import { retry } from '@relay/retry';
import { websocket } from '@relay/ws';

// A limit per client address: 100 requests a minute, 20 at once at most.
export function limitedApi(apiService = 'http://api:8000'): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    stages: [
      rateLimit({ points: 100, duration: 60_000, burst: 20 }), // outside retry: one client request, one token
      retry({ maxRetries: 2 }),
    ],
  });
}

// Several limits on one route: per API key, and for the route as a whole.
export function partnerApi(apiService = 'http://partners:8000'): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    stages: [
      rateLimit({ name: 'per-key', key: { header: 'x-api-key' }, points: 10, duration: 1_000 }),
      rateLimit({ name: 'global', key: 'route', points: 500, duration: 1_000 }),
      concurrencyLimit({ key: { header: 'x-api-key' }, max: 4 }),
    ],
  });
}

// One limit for every gateway instance: the buckets live in Redis.
export function sharedLimit(apiService: string, redisUrl: string, logger: Logger): { api: Relay; redis: Redis } {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', (error) => logger.warn({ error: error.message }, 'redis connection failed'));
  const api = createRelay({
    targetBaseUrl: apiService,
    logger,
    stages: [
      rateLimit({
        name: 'api',
        points: 1_000,
        duration: 60_000,
        store: redisStore({ client: redis, timeout: 200 }), // past 200 ms the call fails...
        failOpen: true,                                      // ...and the request goes through, logged
      }),
    ],
  });
  return { api, redis };
}

// WebSocket sessions: each holds its slot until it closes; handshakes are rate limited too.
export function chatGateway(chatService = 'http://chat:8000', port = 8080) {
  const chat = createRelay({
    targetBaseUrl: chatService,
    websocket: websocket(),
    stages: [concurrencyLimit({ max: 3 }), rateLimit({ points: 30, duration: 60_000 })],
  });
  const server = http.createServer(chat.handle);
  server.on('upgrade', chat.upgrade);
  server.listen(port);
  return { chat, server };
}

// Trying a limit out: counts and logs what it would refuse, refuses nothing.
export function trialLimit(apiService: string, logger: Logger): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    logger,
    stages: [rateLimit({ points: 5, duration: 60_000, dryRun: true })],
  });
}

// The same token bucket without a relay: a login form's attempts per user name.
const logins = createLimiter({ name: 'login', points: 5, duration: 15 * 60_000 });

export async function loginAllowed(username: string, response: http.ServerResponse): Promise<boolean> {
  const decision = await logins.consume(`user:${username.toLowerCase()}`);
  if (decision.allowed) return true;
  response.writeHead(429, logins.headers(decision)).end('too many attempts\n');
  return false;
}
