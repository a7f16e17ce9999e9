// docs/configuration.md: every option of every package, spelled out with its default value.
// configuration.test.ts builds each one (so the names and types are checked) and runs a relay
// made of all of them against a real TLS upstream.
import { createRelay, httpTransport, silentLogger, type Relay, type Stage, type Transport, type UpgradeTransport } from '@relay/core';
import { gotTransport } from '@relay/core/got';
import { toConnect, type ConnectMiddleware } from '@relay/connect-adapter';
import { cookies } from '@relay/cookies';
import { headers, rewriteLocation } from '@relay/headers';
import { concurrencyLimit, memoryStore, rateLimit } from '@relay/limits';
import { retry } from '@relay/retry';
import { websocket } from '@relay/ws';

export function relayWithEveryOption(stages: Stage[] = [], ca?: string | Buffer): Relay {
  return createRelay({
    targetBaseUrl: 'https://auth.internal:8443', // required; its own path, if any, comes first
    upstreamPrefix: '/',                         // joined after the target's path
    mountPath: '',                               // none: for http.createServer(relay.handle) only
    preserveHost: false,                         // Host: the upstream's host:port
    timeout: { connect: 5_000, read: 30_000, write: 30_000, pool: 10_000 }, // ms, per attempt; 0 disables one
    stages,                                      // [] ; stages[0] is the outermost
    transport: httpTransport(),                  // the default
    websocket: undefined,                        // none: upgrades get 501; websocket() from @relay/ws
    logger: silentLogger,                        // the default: nothing is logged
    tls: { ca, rejectUnauthorized: true, servername: 'auth.internal' }, // for an https: target
    shutdownTimeout: 10_000,                     // how long shutdown() drains before aborting
    trustProxy: false,                           // an edge gateway: client-sent X-Forwarded-* etc. are replaced
    forwarded: { for: true, proto: true, host: true, port: true, prefix: true }, // the forwarding headers written
    logQuery: false,                             // log lines show paths without their query
  });
}

export function httpTransportDefaults(): Transport {
  return httpTransport({ maxSockets: 256, maxFreeSockets: 256, idleTimeout: 30_000 });
}

export function gotTransportDefaults(): Transport {
  return gotTransport({ maxSockets: 256, maxFreeSockets: 256, idleTimeout: 30_000, hooks: {}, dnsCache: false });
}

export function retryDefaults(): Stage {
  return retry({
    maxRetries: 0,
    backoffFactor: 200,
    maxBackoff: 10_000,
    jitter: false,
    statuses: [502, 503, 504],
    errors: ['ERR_UPSTREAM_UNREACHABLE', 'ERR_UPSTREAM_RESET', 'ERR_CONNECT_TIMEOUT', 'ERR_READ_TIMEOUT'],
    methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'],
    maxReplayBytes: 65_536,
    retryAfter: 10_000,
    deadline: 0,
  });
}

export function headersDefaults(): Stage {
  return headers({
    extraRequest: {},
    dropRequest: [],
    allowRequest: undefined, // every request header passes
    extraResponse: {},
    dropResponse: [],
    allowResponse: undefined, // every response header passes
    forwarded: false,
    via: false,
  });
}

export function rewriteLocationDefaults(): Stage {
  return rewriteLocation({ publicOrigin: undefined, relative: true }); // origin: the client's scheme and Host
}

export function cookiesDefaults(): Stage {
  return cookies({ rewriteDomain: undefined, rewritePath: undefined, secure: undefined, sameSite: undefined }); // keep all
}

export function websocketDefaults(): UpgradeTransport {
  return websocket({ highWaterMark: 1024 * 1024, idleTimeout: 300_000, closeTimeout: 5_000 }); // transparent sessions
}

export function connectDefaults(relay: Relay): ConnectMiddleware {
  return toConnect(relay, { errors: 'respond' }); // 'next' hands RelayErrors to the app's error handler
}

export function rateLimitDefaults(): Stage {
  return rateLimit({
    points: 100,                       // required: tokens per duration
    duration: 60_000,                  // required
    burst: 100,                        // default: points
    key: 'client',
    name: 'default',
    store: memoryStore({ maxKeys: 100_000 }),
    dryRun: false,
    headers: true,
    failOpen: true,
  });
}

export function concurrencyLimitDefaults(): Stage {
  return concurrencyLimit({ max: 10, key: 'client', name: 'default' }); // max is required
}
